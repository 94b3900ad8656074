"""What both wings of the room use (curation.convert and curation.clean never import each
other): the one atomic writer and the command-line helpers."""
