"""Contracts: Avro schemas, the codec (the only code touching Avro bytes), the registry client, topic names, settings.

Imported by every other package; imports none of ours.
"""
