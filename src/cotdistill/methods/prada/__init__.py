"""``method: prada``: prompt-assisted domain-adversarial CoT distillation (arXiv 2501.09804).

SFT on the labelled source-domain rationales, plus a domain discriminator that reads the
student's pooled hidden states through a gradient-reversal layer, on source rows and on
unlabelled target-domain questions alike. The discriminator learns to tell the domains apart;
the student's weights (full or LoRA) and its P-tuning soft prompt receive the reversed gradient
and so learn features, and a prompt, that do not give the domain away.

Per micro-batch: ``batch_size`` labelled rows plus ``target_rows`` unlabelled ones (prompt only,
every label -100, so the SFT loss ignores them); an epoch is one pass over the labelled rows and
the unlabelled ones cycle. Loss = SFT loss + per-domain averaged cross-entropy of the
discriminator on all rows; the reversal scales the student's share by lambda (constant or the
DANN schedule over training progress), the discriminator's own gradient is not reversed.

Ablations: ``adversarial: false`` drops the discriminator (and the target rows), ``soft_prompts:
false`` drops the prompt; both off is plain SFT. The soft prompt is part of the student, so it is
saved and reloaded with every checkpoint and used by ``Student.generate``.
"""

from cotdistill.methods.prada.config import Alignment, DomainLabels, PRADAConfig
from cotdistill.methods.prada.method import PRADA
from cotdistill.methods.prada.sampler import MixedBatchSampler
from cotdistill.methods.prada.trainer import DISCRIMINATOR, PRADATrainer

__all__ = ["DISCRIMINATOR", "PRADA", "Alignment", "DomainLabels", "MixedBatchSampler", "PRADAConfig", "PRADATrainer"]
