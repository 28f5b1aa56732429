"""deepstrata:dependencies: what DeepStrata needs beside QGIS, what is there, and (INSTALL) pip to get the rest."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
)

from ..compat import ProcessingFileParameterBehavior
from ..dependencies import BUILD_MODES, DependencyError, install, prepare
from ..support import dependencies_target, profile_dir
from .base import DeepStrataAlgorithm



class CheckDependenciesAlgorithm(DeepStrataAlgorithm):
    INSTALL = "INSTALL"
    OFFLINE_WHEELS = "OFFLINE_WHEELS"
    GPU = "GPU"
    TARGET_FOLDER = "TARGET_FOLDER"
    CLUSTER = "CLUSTER"
    REPORT = "REPORT"
    TARGET = "TARGET"
    COMMAND = "COMMAND"
    READY = "READY"

    def name(self) -> str:
        return "dependencies"

    def displayName(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Check and install dependencies")

    def shortDescription(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr("Reports the Python packages DeepStrata needs (onnxruntime, onnx) and installs the missing.")

    def tags(self) -> list:
        return self.tr("onnx,onnxruntime,install,dependencies,pip,packages,gpu,cuda,directml,setup").split(",")

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS API)
        return self.tr(
            "Checks the packages DeepStrata needs beside QGIS: onnxruntime (runs the models) and onnx (optional: "
            "builds and edits model graphs), with their versions.\n\n"
            "With 'Install missing packages' it runs pip with the Python QGIS uses, into a private folder of this "
            "QGIS profile (<profile>/python/deepstrata-deps/py3.X), never into the system's Python. The folder "
            "survives plugin updates and is added to the path when the plugin loads. The numpy and other "
            "packages QGIS has loaded are kept as they are (a pip constraints file). The onnxruntime build follows "
            "the machine: onnxruntime-gpu with an NVIDIA driver (CUDA 12), onnxruntime-directml on Windows, the "
            "CPU build otherwise; choose 'cpu' or 'gpu' to override.\n\n"
            "Offline: download the wheels on another machine ('pip download onnxruntime numpy==<QGIS's numpy>') and "
            "give their folder. If pip fails (offline, proxy, certificate, no package for this Python), the "
            "log says why and gives the command to run by hand."
        )

    def canExecute(self) -> "tuple[bool, str]":  # noqa: N802 (QGIS API)
        return True, ""  # the one algorithm that runs without onnxruntime

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS API)
        self.add(QgsProcessingParameterBoolean(self.INSTALL, self.tr("Install missing packages"), defaultValue=False,
                                               optional=True),
                 "Off: only report what is there. On: install what is missing or too old with pip.")
        self.add(QgsProcessingParameterBoolean(self.CLUSTER, self.tr("Also for runs on a Dask cluster"),
                                               defaultValue=False, optional=True),
                 "Also install dask[distributed], which the advanced 'Dask cluster' parameter of the algorithms needs "
                 "(docs/scale-out.md). Off: it is reported, not installed.")
        self.add(QgsProcessingParameterFile(self.OFFLINE_WHEELS, self.tr("Offline: folder of wheels"),
                                            behavior=ProcessingFileParameterBehavior.Folder, optional=True),
                 "Install from this folder of .whl files instead of the internet (pip --no-index --find-links). "
                 "It must hold the packages and their dependencies, numpy at the version QGIS uses included.")
        self.add(QgsProcessingParameterEnum(self.GPU, self.tr("onnxruntime build"), options=list(BUILD_MODES),
                                            defaultValue=0, optional=True),
                 "auto: the GPU build when an NVIDIA driver (CUDA 12) is found, DirectML on Windows, the CPU build "
                 "otherwise; cpu: always the CPU build; gpu: the GPU build.")
        self.add(QgsProcessingParameterFile(self.TARGET_FOLDER, self.tr("Install into folder"),
                                            behavior=ProcessingFileParameterBehavior.Folder, optional=True),
                 "Default: this profile's private folder. Another folder is not added to the path by itself.",
                 advanced=True)
        self.addOutput(QgsProcessingOutputString(self.REPORT, self.tr("Report")))
        self.addOutput(QgsProcessingOutputString(self.TARGET, self.tr("Private package folder")))
        self.addOutput(QgsProcessingOutputString(self.COMMAND, self.tr("pip command")))
        self.addOutput(QgsProcessingOutputBoolean(self.READY, self.tr("All required packages present")))

    def processAlgorithm(self, parameters, context: QgsProcessingContext,  # noqa: N802 (QGIS API)
                         feedback: QgsProcessingFeedback) -> dict:
        do_install = self.parameterAsBool(parameters, self.INSTALL, context)
        wheels = self.parameterAsFile(parameters, self.OFFLINE_WHEELS, context) or None
        mode = BUILD_MODES[self.parameterAsEnum(parameters, self.GPU, context)]
        target = self.parameterAsFile(parameters, self.TARGET_FOLDER, context) or dependencies_target()
        try:
            setup = prepare(profile_dir(), mode, wheels, target=target,
                            on_request=self.parameterAsBool(parameters, self.CLUSTER, context))
            feedback.pushInfo(setup.describe())
            report, command = setup.describe(), setup.plan.shell_command() if setup.needed else ""
            statuses = setup.statuses
            if do_install and setup.needed:
                result = install(setup, feedback.pushConsoleInfo, lambda f: feedback.setProgress(100.0 * f),
                                 feedback.isCanceled)
                feedback.pushInfo(result.describe())
                report, statuses = f"{report}\n{result.describe()}", result.after
            elif setup.needed:
                feedback.pushInfo(self.tr("Nothing installed: run again with 'Install missing packages' on."))
        except DependencyError as exc:  # cancelled, failed (with the manual command), no Python found
            raise QgsProcessingException(str(exc)) from exc
        ready = all(s.ok for s in statuses if not s.requirement.optional)
        return {self.REPORT: report, self.TARGET: setup.plan.target, self.COMMAND: command, self.READY: ready}
