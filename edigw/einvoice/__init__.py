"""Supplier e-invoices in: UBL 2.1, UN/CEFACT CII and Factur-X/ZUGFeRD 2.x, read on the
EN 16931 semantic model.

Modules, and the interfaces other parts build on:

- ``detect`` — ``detect(data: bytes, *, name="", limits=DEFAULT_LIMITS) -> Detected``, a
  pure function: the syntax (``Syntax``), the profile from BT-24 (``Profile``), the invoice
  XML bytes (a PDF's attachment), the attachment name and the parsed root. A file that is no
  e-invoice raises ``NotAnInvoiceError`` (``found``: ``order-x``, ``cdar``, ``ubl-order``,
  ``zugferd-1``, ``pdf-without-invoice``, ``html``, ...); an unreadable or oversized one
  ``MalformedFileError``. Validation layers call it first and reuse ``Detected.root``.
- ``terms`` — the business-term table as data: ``TERMS`` (BT id, alias, name, kind, group,
  UBL XPath, CII XPath) and ``GROUPS`` (the repeating BGs). Adding a term is adding a row.
- ``model`` — the table indexed (``resolve_term``, ``resolve_group``, ``check``) and the
  derived terms' rules (SIREN/SIRET, CII dates).
- ``reader`` — ``EinvoiceReader``, registered as source format ``einvoice`` in
  ``edigw.formats.READERS``: one ``InvoiceRecord`` per file whose selectors are BT/BG ids or
  aliases (``value("totals.payable")``, ``children("lines")``) and whose ``where()`` gives
  file, attachment, line, XPath and term. ``EinvoiceReader().record_of(detected,
  source_name=...)`` builds the record from an existing detection, so a pipeline that
  validates first does not parse twice.

Mappings address business terms: ``source: {format: einvoice}``, ``from: totals.payable``,
``each: lines``. See docs/einvoices.md for the list of terms and aliases.
"""
