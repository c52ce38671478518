"""Places an image can live, each a Source and/or a Sink for the copy engine."""
