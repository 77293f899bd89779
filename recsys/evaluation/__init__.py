"""Offline evaluation: metrics over judged queries (``metrics``), the search modes (``modes``), the
similar-items metric from shared attributes (``similar``), the evaluation index (``evalindex``), what
``recsys eval`` / ``eval-similar`` do (``commands``) and their reports (``report``)."""
