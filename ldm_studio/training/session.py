"""The parts every training loop shares: the accelerator, thread count, progress bar and loss log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from ldm_studio.training.config import RunConfig
from ldm_studio.training.run_log import LossLog, plot_loss


def make_accelerator(run: RunConfig):  # -> accelerate.Accelerator (imported lazily: it is heavy)
    """One process per device; under ``accelerate launch`` the same code runs DDP."""
    from accelerate import Accelerator

    if run.num_threads > 0:
        torch.set_num_threads(run.num_threads)  # -1: a ThreadTuner in the loop decides
    precision = run.mixed_precision
    if precision == "fp16" and not torch.cuda.is_available():
        precision = "bf16"  # fp16 autocast is a CUDA feature; bf16 runs on CPUs with AVX-512 BF16
    from accelerate.state import AcceleratorState

    # accelerate keeps one precision per process and refuses a second Accelerator that asks for
    # another: a window session that trains twice (bf16, then fp32) would fail. The distributed
    # state (PartialState) is kept, so a run under ``accelerate launch`` keeps its process group.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=precision)


class StepReporter:
    """Progress bar with loss and samples/s, the CSV log and the loss plot, on the main process only."""

    def __init__(self, out_dir: Path, title: str, run: RunConfig, start_step: int, is_main: bool) -> None:
        from tqdm import tqdm

        self.out_dir = out_dir
        self.title = title
        self.run = run
        self.is_main = is_main
        self.log = LossLog(out_dir / "loss.csv", start_step) if is_main else None
        self.bar = tqdm(
            total=run.max_steps,
            initial=start_step,
            desc=title,
            file=sys.stderr,
            disable=not is_main,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,  # a log file gets a line every 30 s
        )
        self.window_loss = 0.0
        self.window_steps = 0
        self.window_samples = 0
        self.window_start = time.perf_counter()
        self.elapsed_before = self._elapsed_in_log()

    def _elapsed_in_log(self) -> float:
        if self.log is None:
            return 0.0
        from ldm_studio.training.run_log import read_loss_log

        rows = read_loss_log(self.log.path)
        return float(rows[-1]["elapsed_s"]) if rows else 0.0

    def step_done(self, step: int, loss: float, samples: int, learning_rate: float) -> None:
        """Record finished step ``step`` (1-based count of steps done)."""
        self.window_loss += loss
        self.window_steps += 1
        self.window_samples += samples
        self.bar.update(1)
        if step % self.run.log_every and step != self.run.max_steps:
            return
        now = time.perf_counter()
        seconds = max(now - self.window_start, 1e-9)
        rate = self.window_samples / seconds
        mean_loss = self.window_loss / self.window_steps
        self.elapsed_before += seconds
        self.bar.set_postfix(
            loss=f"{mean_loss:.4f}", samples_per_s=f"{rate:.1f}", threads=torch.get_num_threads()
        )
        if self.log is not None:
            self.log.append(
                step=step,
                loss=round(mean_loss, 6),
                learning_rate=learning_rate,
                samples_per_s=round(rate, 2),
                elapsed_s=round(self.elapsed_before, 1),
                threads=torch.get_num_threads(),
            )
        self.window_loss, self.window_steps, self.window_samples = 0.0, 0, 0
        self.window_start = now

    def plot(self) -> None:
        if self.log is not None and self.log.path.is_file():
            plot_loss(self.log.path, self.out_dir / "loss.png", self.title)

    def close(self) -> None:
        self.bar.close()


class ThreadTuner:
    """Picks 1 or ``max_threads`` torch threads as a shared CPU allows (``num_threads = -1``).

    Measured here: with two cores and another busy process, two threads made each step up to 20x
    slower (OpenMP threads wait on each other), while on an idle machine they are ~2x faster than
    one. So: run one thread, try the maximum for a few steps every ``probe_every`` steps, keep it
    while it is clearly faster, and drop back the moment a step gets slow. Float results then depend
    on the thread count, so runs tuned this way are not bit-reproducible; fixed counts are.
    """

    def __init__(self, max_threads: int, probe_every: int = 100, probe_steps: int = 4) -> None:
        self.max_threads = max_threads
        self.probe_every = probe_every
        self.probe_steps = probe_steps
        self.threads = 1
        self.single_time: float | None = None
        self.multi_time: float | None = None
        self.probe_times: list[float] = []
        self.steps_since_probe = 0
        torch.set_num_threads(1)

    def step_took(self, seconds: float) -> None:
        if self.threads == 1:
            previous = self.single_time
            self.single_time = seconds if previous is None else 0.9 * previous + 0.1 * seconds
            self.steps_since_probe += 1
            if self.steps_since_probe >= self.probe_every and self.max_threads > 1:
                self._use(self.max_threads)
                self.probe_times = []
        elif self.multi_time is None:  # probing
            self.probe_times.append(seconds)
            if len(self.probe_times) > self.probe_steps:
                probe = sorted(self.probe_times[1:])[len(self.probe_times[1:]) // 2]  # first step warms up
                if self.single_time is not None and probe < 0.8 * self.single_time:
                    self.multi_time = probe
                else:
                    self._use(1)
        elif seconds > 1.5 * self.multi_time:
            self._use(1)
        else:
            self.multi_time = 0.9 * self.multi_time + 0.1 * seconds

    def _use(self, threads: int) -> None:
        self.threads = threads
        torch.set_num_threads(threads)
        if threads == 1:
            self.multi_time = None
            self.steps_since_probe = 0
