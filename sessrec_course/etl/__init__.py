"""The session ETL: cuDF/pandas dispatch, the fitted ``SessionWorkflow``, temporal split, default dataset."""

from sessrec_course.arrays import pad_right
from sessrec_course.etl.dataset import DatasetArtifacts, prepare_default_dataset
from sessrec_course.etl.frame import get_backend
from sessrec_course.etl.sessions import sessionize, validate_events
from sessrec_course.etl.split import temporal_split
from sessrec_course.etl.workflow import SessionWorkflow, item_category_lookup
from sessrec_course.ids import OOV_ID, PAD_ID

__all__ = [
    "OOV_ID", "PAD_ID", "DatasetArtifacts", "SessionWorkflow", "get_backend", "item_category_lookup", "pad_right",
    "prepare_default_dataset", "sessionize", "temporal_split", "validate_events",
]
