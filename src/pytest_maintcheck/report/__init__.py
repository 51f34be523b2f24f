"""Files a run leaves behind: atomic writing, the HTML summary."""
