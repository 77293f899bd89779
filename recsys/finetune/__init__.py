"""Domain adaptation: LoRA fine-tuning of the encoder on a shop's own catalogue (and judged or logged
queries where it has them), with the attribute-focused templates in the training text.

``pairs`` and ``queries`` make the training pairs, ``negatives`` mines the base model's near misses,
``train`` runs the contrastive training (``loss``, ``encoding``, ``validation``), ``output`` writes the
merged model directory with its ``finetune.json``, ``run`` is what the CLI and the task call, and
``jobs`` records a fine-tune's progress in a job record, as a reindex does. Pure core: no Flask,
Celery or workers here.
"""

from recsys.finetune.config import FinetuneConfig
from recsys.finetune.output import FINETUNE_FILE, FinetuneRecord, read_record
from recsys.finetune.run import FinetuneData, FinetuneResult, finetune

__all__ = [
    "FINETUNE_FILE",
    "FinetuneConfig",
    "FinetuneData",
    "FinetuneRecord",
    "FinetuneResult",
    "finetune",
    "read_record",
]
