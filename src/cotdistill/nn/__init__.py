"""Small reusable modules for domain-adversarial training: gradient reversal, a domain
discriminator and its adversarial objectives, pooling of hidden states, and P-tuning soft prompts."""

from cotdistill.nn.adversarial import AdversarialTerms, Objective, adversarial_terms
from cotdistill.nn.discriminator import DomainDiscriminator, confusion_loss, domain_accuracy, domain_loss
from cotdistill.nn.grl import GradientReversal, LambdaSchedule, adversarial_lambda, grad_reverse
from cotdistill.nn.pooling import Pooling, last_pool, mean_pool, pool
from cotdistill.nn.soft_prompt import Reparameterization, SoftPrompt, SoftPromptConfig

__all__ = [
    "AdversarialTerms",
    "Objective",
    "adversarial_terms",
    "DomainDiscriminator",
    "GradientReversal",
    "LambdaSchedule",
    "Pooling",
    "Reparameterization",
    "SoftPrompt",
    "SoftPromptConfig",
    "adversarial_lambda",
    "confusion_loss",
    "domain_accuracy",
    "domain_loss",
    "grad_reverse",
    "last_pool",
    "mean_pool",
    "pool",
]
