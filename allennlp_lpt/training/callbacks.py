from typing import Any, Dict

import torch
from allennlp.training.callbacks.callback import TrainerCallback


@TrainerCallback.register("lpt_rng_state")
class RngStateCallback(TrainerCallback):
    """
    Saves PyTorch's random states in every checkpoint and restores them with `--recover`, so a
    run killed and recovered drops out exactly as an uninterrupted run would.

    On recovery AllenNLP replays the training data loading of the epochs already done (so
    Python's and NumPy's random states, which shuffling uses, end up where they were, provided
    the validation loader does not shuffle: the replay skips validation), but not the forward
    passes, whose dropout draws from PyTorch's generator: that state is what this callback
    carries. It is stored as tensors, which `torch.load(weights_only=True)` accepts.

    Registered as a `TrainerCallback` with name "lpt_rng_state".
    """

    def state_dict(self) -> Dict[str, Any]:
        state: Dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        if not state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
