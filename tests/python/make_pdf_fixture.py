"""Writes tests/data/documents/orbital-greenhouse.pdf, the PDF fixture of the ingestion tests.

The fixture is committed; this script documents how it was made (fpdf2 2.8.9, compressed content
streams, two pages, a standard Type1 font) so it can be regenerated:

    python -m pip install fpdf2==2.8.9 && python tests/python/make_pdf_fixture.py
"""

from pathlib import Path

from fpdf import FPDF

PARAGRAPHS = [
    [
        "Orbital Greenhouse Operations Manual",
        "The orbital greenhouse grows lettuce, dwarf wheat and strawberries under red and blue LED "
        "panels. The crew waters the trays every six hours from the recycled water loop.",
        "Carbon dioxide is kept at 1200 ppm during the light cycle; the scrubber lowers it to 800 ppm "
        "when the panels switch off.",
    ],
    [
        "Harvest Procedure",
        "Wheat is harvested after 62 days. The crew seals the tray, vacuums loose grain into the "
        "collection bag and logs the yield in grams on the harvest tablet.",
        "Strawberry plants are hand-pollinated with a soft brush every Tuesday because no insects "
        "live aboard the station.",
    ],
]


def main() -> None:
    pdf = FPDF()
    pdf.set_compression(True)
    pdf.set_creator("agent-operator tests")
    for page in PARAGRAPHS:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 16)
        pdf.multi_cell(0, 10, page[0])
        pdf.set_font("Helvetica", size=11)
        for paragraph in page[1:]:
            pdf.ln(4)
            pdf.multi_cell(0, 6, paragraph)
    out = Path(__file__).resolve().parents[1] / "data" / "documents" / "orbital-greenhouse.pdf"
    pdf.output(str(out))
    print(out)


if __name__ == "__main__":
    main()
