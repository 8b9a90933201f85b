"""Book: what the chapters call (``chapters``), figures, appendices and the browser (PDF, page checks)."""
