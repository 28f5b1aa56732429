"""deepstrata:modelinfo: what a model expects and produces, read from its card."""
from __future__ import annotations

import html
import os

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
)

from ..compat import ProcessingFileParameterBehavior
from .base import DeepStrataAlgorithm, FeedbackAdapter, default_model, engine_errors


class ModelInfoAlgorithm(DeepStrataAlgorithm):
    MODEL = "MODEL"
    OUTPUT_HTML = "OUTPUT_HTML"
    NAME = "NAME"
    TASK = "TASK"
    BANDS = "BANDS"
    BAND_COUNT = "BAND_COUNT"
    CLASSES = "CLASSES"
    PROVIDERS = "PROVIDERS"
    REPORT = "REPORT"
    ICON = "model_info.svg"

    def name(self) -> str:
        return "modelinfo"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Model info")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Shows what an ONNX model expects (bands, tile size) and produces (task, classes).")

    def tags(self) -> list:
        return self.tr("deep learning,onnx,model,card,metadata,classes,bands,information,report").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Reads the model card stored in an ONNX model and reports its name, task, the input bands it "
            "expects (in channel order), its normalisation and tile size, its classes with their raster values, "
            "its training provenance and metrics, and the execution providers available on this machine.\n\n"
            "Use it before 'Run ONNX model on raster' to choose the input bands. Outputs can feed a model "
            "designer workflow; the optional HTML report is a shareable summary."
        )

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        model = QgsProcessingParameterFile(self.MODEL, self.tr("ONNX model"),
                                           behavior=ProcessingFileParameterBehavior.File, extension="onnx",
                                           defaultValue=default_model())
        model.setHelp(self.tr("A .onnx file with a DeepStrata model card (or Deepness metadata)."))
        self.addParameter(model)
        report = QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("HTML report"),
                                                       self.tr("HTML files (*.html)"), optional=True,
                                                       createByDefault=False)
        report.setHelp(self.tr("Optional: write the model card as an HTML page."))
        self.addParameter(report)
        for key, label in ((self.NAME, "Model name"), (self.TASK, "Task"),
                           (self.BANDS, "Input bands (channel order)"), (self.CLASSES, "Classes (value: name)"),
                           (self.PROVIDERS, "Execution providers available here"), (self.REPORT, "Report")):
            self.addOutput(QgsProcessingOutputString(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputNumber(self.BAND_COUNT, self.tr("Number of input bands")))

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict:
        self.check_can_execute()
        from ..inference import available_providers, load_model

        path = self.parameterAsFile(parameters, self.MODEL, context)
        if not path:
            raise QgsProcessingException(self.tr("No model given: choose an .onnx file for 'ONNX model'."))
        with FeedbackAdapter(feedback) as report, engine_errors():
            model = load_model(path)
            report.warnings(model.warnings)
            text = model.describe()
            providers = available_providers()
        for line in text.splitlines():
            report.info(line)
        card = model.card
        results = {
            self.NAME: card.name,
            self.TASK: card.task,
            self.BANDS: ", ".join(b.name for b in card.input.bands),
            self.BAND_COUNT: len(card.input.bands),
            self.CLASSES: ", ".join(f"{c.value}: {c.name}" for c in card.output.classes),
            self.PROVIDERS: ", ".join(providers),
            self.REPORT: text,
            self.OUTPUT_HTML: None,
        }
        html_path = self.parameterAsFileOutput(parameters, self.OUTPUT_HTML, context)
        if html_path:
            try:
                with open(html_path, "w", encoding="utf-8") as stream:
                    stream.write(html_report(model, text))
            except OSError as exc:
                raise QgsProcessingException(
                    f"Cannot write the HTML report '{html_path}': {exc.strerror}. Choose a writable folder.") from exc
            results[self.OUTPUT_HTML] = html_path
        return results


def html_report(model, text: str) -> str:
    """A self-contained page: the describe() text, a class legend with colour swatches, the card JSON."""
    import json

    card = model.card
    rows = "".join(
        f"<tr><td>{c.value}</td><td><span style='display:inline-block;width:1em;height:1em;"
        f"background:{html.escape(c.color)};border:1px solid #444'></span></td><td>{html.escape(c.name)}</td>"
        f"<td>{html.escape(c.description)}</td></tr>" for c in card.output.classes)
    legend = (f"<h2>Classes</h2><table><tr><th>Value</th><th></th><th>Name</th><th>Description</th></tr>{rows}"
              "</table>") if rows else ""
    card_json = html.escape(json.dumps(card.to_dict(), indent=2))
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(card.name)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
            "pre{background:#f4f4f4;padding:1em}</style></head><body>"
            f"<h1>{html.escape(card.name)}</h1><p>{html.escape(os.path.basename(model.path))}</p>"
            f"<pre>{html.escape(text)}</pre>{legend}<h2>Model card</h2><pre>{card_json}</pre></body></html>")
