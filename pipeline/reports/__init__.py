"""The reports of a run, read back from MLMD and TFMA: the run's outcome (``run_report``), each head's Bayes limit
(``head_limits``; ``assistant_limits`` for the customer-service assistant's logs), the data and training details
(``details``), the markdown and HTML pages (``markdown``, ``html_page``) and the files `mtl run` and `mtl report`
write (``write``)."""
