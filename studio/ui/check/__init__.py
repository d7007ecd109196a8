"""The Check pane in parts: the setup form (``setup``), the run control (``run_control``), the results view
(``results``, with the score summary in ``summary``) and the thin pane that wires them (``pane``)."""
