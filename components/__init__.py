"""Custom TFX components, only where a standard one cannot do the job."""
