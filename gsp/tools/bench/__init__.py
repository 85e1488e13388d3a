"""Every benchmark of the platform (`gsp bench`, the linkage benchmark, cleaning figures); see README.md here."""
