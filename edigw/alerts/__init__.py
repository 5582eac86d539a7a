"""Telling people: alerts by webhook and e-mail, grouped so that a bad hour is one digest.

``events`` says what an alert is, ``digest`` groups and deduplicates them (pure logic),
``webhook`` and ``email`` deliver a message, ``dispatcher`` runs delivery off the data path,
``watch`` turns what the journal and the supervisor know into alerts.
"""
