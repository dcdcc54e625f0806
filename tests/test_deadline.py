"""The demo's wall-clock budget (`runs.Deadline`): the plan it makes from measured steps, the learning-rate schedule
it rescales to that plan, and the stop at the deadline. Driven step by step with a fake clock, as the Trainer calls it:
nothing here depends on this machine's speed."""

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments, get_scheduler

from cftrain.runs import Deadline


def drive(deadline: float, full: int, seconds: list[float], schedule: str = "cosine", warmup: int = 2):
    """Run a Deadline over `full` steps whose end times are `seconds` (cumulative); return it, the steps run and the
    learning rates after each step."""
    args = TrainingArguments(output_dir="unused", lr_scheduler_type=schedule, warmup_steps=warmup, report_to=[])
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = get_scheduler(schedule, optimizer, warmup, full)
    clock_now = iter(seconds)
    budget = Deadline(deadline, "test", probe=3, clock=lambda: next(clock_now))
    state, control = TrainerState(max_steps=full), TrainerControl()
    budget.on_train_begin(args, state, control)
    lrs = []
    for _ in range(full):
        optimizer.step()
        scheduler.step()
        state.global_step += 1
        budget.on_step_end(args, state, control, lr_scheduler=scheduler)
        lrs.append(optimizer.param_groups[0]["lr"])
        if control.should_training_stop:
            break
    return budget, state.global_step, lrs


def test_a_machine_fast_enough_runs_the_full_plan():
    budget, steps, lrs = drive(deadline=1000.0, full=20, seconds=[float(t) for t in range(1, 21)])
    assert steps == 20 and budget.planned == 20 and budget.s_per_step == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9)  # the recipe's cosine ends at 0 at step 20
    assert not budget.stopped_at_deadline


def test_a_slow_machine_gets_a_shorter_run_of_the_same_schedule():
    # Step 1 ends at t=1 (warm-up, not timed), steps 2-4 take 2 s each: at t=7 the 10 s deadline leaves room for 1 more
    budget, steps, lrs = drive(deadline=10.0, full=40, seconds=[1.0 + 2 * i for i in range(40)])
    assert budget.s_per_step == pytest.approx(2.0)
    assert budget.planned == 5 and steps == 5 and budget.full == 40
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9)  # the cosine was rescaled to end at the planned step 5
    assert max(lrs) == pytest.approx(1.0)  # warm-up to the peak rate, as the recipe's schedule does
    assert budget.summary()["steps_run"] == 5 and not budget.stopped_at_deadline


def test_steps_that_slow_down_after_the_plan_stop_at_the_deadline():
    # 1 s steps while measuring, then 10 s steps: the plan (fits 100 s) is overrun; the deadline stops the run
    seconds = [1.0, 2.0, 3.0, 4.0] + [4.0 + 10 * i for i in range(1, 60)]
    budget, steps, _ = drive(deadline=100.0, full=60, seconds=seconds, schedule="linear")
    assert budget.planned == 60 and steps < 60
    assert seconds[steps - 1] > 100.0 and seconds[steps - 2] <= 100.0  # the first step past the deadline ends it
    assert budget.stopped_at_deadline


def test_a_constant_schedule_stays_constant_when_the_plan_shrinks():
    _, steps, lrs = drive(deadline=10.0, full=40, seconds=[1.0 + 2 * i for i in range(40)], schedule="constant",
                          warmup=0)  # fmt: skip
    assert steps == 5 and lrs == [1.0] * 5
