"""What a training run shows while it runs: one labelled progress bar, ``train <name> seed <n>``.

The bar counts optimizer steps (done/total, with tqdm's elapsed time, ETA and rate) and shows the latest logged loss
terms as its postfix (``loss``, the ranking loss, the FLOPS term, the share of document weights the ℓ0 mask
removes). It replaces ``transformers.Trainer``'s own progress bar and the log dictionary it prints every
``logging_steps``, and Hugging Face's per-checkpoint bars ("Writing model shards") are off while it runs; the
training log itself (``state.log_history``, saved as ``log_history.json``) is untouched.
"""

from __future__ import annotations

from tqdm import tqdm
from transformers import TrainerCallback
from transformers.utils import logging as hf_logging

#: Logged term -> the short name the bar shows, in the bar's order (missing terms are left out).
SHOWN_TERMS = {"loss": "loss", "ranking": "rank", "flops": "flops", "lambda": "λ", "masked_fraction": "masked"}


def postfix(logs: dict) -> str:
    """``loss=0.6931 rank=0.6931 flops=12.5 λ=0.01 masked=41%`` of one training log entry."""
    shown = []
    for name, short in SHOWN_TERMS.items():
        value = logs.get(name)
        if isinstance(value, (int, float)):
            shown.append(f"{short}={value:.0%}" if name == "masked_fraction" else f"{short}={value:.4g}")
    return " ".join(shown)


class TrainingBar(TrainerCallback):
    """A ``TrainerCallback`` drawing one tqdm bar per training run on the local main process (stderr)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: tqdm | None = None
        self._placed = False
        self._hf_bars = True

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_local_process_zero and self.bar is None:
            self.bar = tqdm(total=state.max_steps, desc=self.label, unit="step", dynamic_ncols=True)
            self._placed = False
            self._hf_bars = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()

    def on_step_begin(self, args, state, control, **kwargs):
        # A resumed run restores its step after on_train_begin: start the bar there (not counted in the rate/ETA).
        if self.bar is not None and not self._placed:
            self._placed = True
            if state.global_step:
                self.bar.n = self.bar.initial = self.bar.last_print_n = state.global_step
                self.bar.refresh()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None and state.global_step > self.bar.n:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.set_postfix_str(postfix(logs))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            if self._hf_bars:
                hf_logging.enable_progress_bar()
