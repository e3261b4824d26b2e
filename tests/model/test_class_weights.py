import numpy as np
import pytest
import torch

from config.vocabulary import check_class_weights
from model.class_weights import inverse_frequency, loss_weights


def test_inverse_frequency_is_sklearns_balanced_and_one_definition_serves_every_loss():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.array([0, 0, 0, 1, 2, 2])
    np.testing.assert_allclose(inverse_frequency(labels, 3),
                               compute_class_weight("balanced", classes=np.arange(3), y=labels))
    assert inverse_frequency(labels, 4)[3] == 6 / 4           # an absent class counts as one
    weights = loss_weights(labels, 3, "inverse_frequency")
    assert weights.dtype == torch.float32 and torch.equal(weights, torch.tensor([2 / 3, 2.0, 1.0]))
    assert loss_weights(labels, 3, "none") is None


def test_an_unknown_choice_is_named():
    with pytest.raises(ValueError, match="train.class_weights='balanced': use inverse_frequency or none"):
        check_class_weights("balanced", "train.class_weights")


def test_unlabelled_context_utterances_count_for_no_class():
    from model.class_weights import inverse_frequency

    np.testing.assert_allclose(inverse_frequency(np.array([0, 0, 1, -1, -1]), 2),
                               inverse_frequency(np.array([0, 0, 1]), 2))
