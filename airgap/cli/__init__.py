"""The command line: thin verbs around the store and the copy engine."""
