"""Command line: the parser (``commands.build_parser``), its commands and ``estimate`` on any panel."""
