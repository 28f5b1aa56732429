"""deepstrata:modelinfo: what a model expects and produces, read from its card."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
)

from ..support import model_or_default
from .base import MODEL_HELP, DeepStrataAlgorithm, FeedbackAdapter, engine_errors, model_parameter


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
        self.add(model_parameter(self.MODEL), MODEL_HELP)
        report = QgsProcessingParameterFileDestination(self.OUTPUT_HTML, self.tr("HTML report"),
                                                       self.tr("HTML files (*.html)"), optional=True,
                                                       createByDefault=False)
        report.setHelp(self.tr("Optional: write the model card as an HTML page."))
        # A plain file output, not the HTML output QGIS would make of it: that one has the dialog announce "HTML
        # output has been generated" after every run, even when no report was asked for.
        self.addParameter(report, createOutput=False)
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT_HTML, self.tr("HTML report")))
        for key, label in ((self.NAME, "Model name"), (self.TASK, "Task"),
                           (self.BANDS, "Input bands (channel order)"), (self.CLASSES, "Classes (value: name)"),
                           (self.PROVIDERS, "Execution providers available here"), (self.REPORT, "Report")):
            self.addOutput(QgsProcessingOutputString(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputNumber(self.BAND_COUNT, self.tr("Number of input bands")))

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict:
        self.check_can_execute()
        from ..inference import available_providers, load_model
        from ..inference.workflows.card_html import card_page

        path = model_or_default(self.parameterAsFile(parameters, self.MODEL, context))
        if not path:
            raise QgsProcessingException(self.tr("No model given and none is bundled: choose an .onnx file for "
                                                 "'ONNX model'."))
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
                    stream.write(card_page(model, providers))
            except OSError as exc:
                raise QgsProcessingException(
                    f"Cannot write the HTML report '{html_path}': {exc.strerror}. Choose a writable folder.") from exc
            results[self.OUTPUT_HTML] = html_path
        return results
