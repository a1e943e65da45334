"""The report as a PDF attachment (parameters.pdf): the email's HTML with its charts, laid out."""

from __future__ import annotations

from .queries import BrokenReport


def pdf_document(html: str) -> bytes:
    """The report as PDF, by WeasyPrint (HTML and CSS layout through Pango; charts are the same
    PNGs). Imported here: it loads the system's Pango, which only reports with a PDF need."""
    try:
        import weasyprint
    except OSError as exc:  # the library is there, the system's Pango is not
        raise BrokenReport(f"the PDF cannot be made: WeasyPrint needs the system's Pango ({exc})") from exc
    try:
        return weasyprint.HTML(string=html).write_pdf()
    except Exception as exc:
        raise BrokenReport(f"the PDF could not be made: {type(exc).__name__}: {exc}") from exc
