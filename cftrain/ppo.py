"""PPO with a learned critic on LoRA adapters, with the same recipes, rewards and LoRA setup as GRPO.

    cftrain train recipes/tiny/ppo.yaml
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m cftrain train recipes/tiny/ppo.yaml

TRL 1.16 has no PPO trainer any more; this is the classic RLHF recipe (Ziegler et al. 2019; "The N Implementation
Details of RLHF with PPO", Huang et al. 2022; TRL's old PPOTrainer) in one readable loop:

- one copy of the base weights serves three roles: the policy is LoRA adapter "default" (so that the saved adapter
  loads with plain `PeftModel.from_pretrained`), the critic is a second adapter "critic" plus a linear value head on
  the last hidden state, and the reference policy for the KL term is the same base with the adapters disabled.
  `ppo.value_model` names a separate (smaller) critic model instead; it must share the policy's tokenizer. With
  `lora.enabled: false` the policy and a critic copy are fully fine-tuned and a frozen reference copy is kept:
  three copies of the weights.
- a rollout samples one completion per prompt with `generate` (top_k 0, top_p 1, so that the log-probs of the
  update are those of the sampling distribution), scores it with the recipe's reward functions and weights (called
  TRL-style, like GRPO), and puts the score on the last token and a per-token KL penalty (k1: logp - ref_logp,
  times the KL coefficient) on every token.
- the update: GAE advantages (whitened), the clipped policy objective and the clipped value loss, `ppo_epochs`
  passes over mini-batches, stopped early when the approximate KL (the k3 estimator, mean of (r - 1) - log r with
  r = pi/pi_old) passes `target_kl`.

The model stays in eval mode throughout: dropout off, so that rollout and update log-probs agree (Huang et al.
detail 'disable dropout'). Each process rolls out its own shard of prompts; advantages are whitened per process, as
in TRL's PPO; losses, clip fractions and KL are means over processes. DDP and DeepSpeed ZeRO-2 (gradient clipping
then comes from the accelerate config) are tested with two CPU processes: `pytest tests/test_ppo.py -m slow`.
Not done: vLLM generation (rollouts use `generate`), gradient checkpointing, and DeepSpeed ZeRO-3 (rejected:
generation and saving use the unwrapped model).

Checkpoints (`<run>/checkpoint-N/`): the policy adapter (top level) and the critic (`critic/`) by save_pretrained,
`value_head.safetensors`, the tokenizer, recipe.yaml, `trainer_state.json` (step, KL coefficient), and accelerate's
state: optimizer, RNG of every process, and the trainable weights only (`model.safetensors`, or DeepSpeed's
`pytorch_model/` saved with exclude_frozen_parameters), never the frozen base.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn
from trl.trainer.utils import entropy_from_logits, selective_log_softmax

from cftrain.data import to_dataset
from cftrain.hooks import EvalHook
from cftrain.models import load_tokenizer, plain_checkpoint
from cftrain.recipes import PPOSettings, Recipe, recipe_dict, resolve_reward, trainer_config
from cftrain.runs import append_metrics, lora_config, model_init_kwargs, prepare_run, save_alongside

POLICY, CRITIC = "default", "critic"  # PEFT saves the "default" adapter at the top level of a folder


@dataclass
class KLController:
    """The KL coefficient: fixed, or adaptive (Ziegler et al. 2019, section 2.2; TRL's old AdaptiveKLController).

    >>> ctl = KLController(0.1, target=6.0, horizon=100)
    >>> ctl.update(kl=9.0, n_samples=10); round(ctl.value, 4)  # error clipped to +0.2: 0.1 * (1 + 0.2 * 10 / 100)
    0.102
    """

    value: float
    target: float | None = None  # None: fixed coefficient
    horizon: int = 10000

    def update(self, kl: float, n_samples: int) -> None:
        if self.target is not None:
            error = min(max(kl / self.target - 1.0, -0.2), 0.2)
            self.value *= 1.0 + error * n_samples / self.horizon


# ---------------------------------------------------------------- advantages and losses (pure, tested by hand)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased (Bessel-corrected) variance over the masked entries, as TRL's masked_var."""
    n = mask.sum()
    return ((x - masked_mean(x, mask)) ** 2 * mask).sum() / (n - 1).clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, std_floor: float = 0.0) -> torch.Tensor:
    """Zero mean over the masked entries, divided by the standard deviation or `std_floor`, whichever is larger;
    masked-out entries become 0.

    The floor is what keeps PPO stable once it has learned: when every rollout earns the same reward, the advantages
    are only the critic's and the KL term's noise, and dividing by their own tiny spread would blow that noise up to
    unit size, so that the policy takes full-size random steps away from what it learned.

    >>> whiten(torch.tensor([[1.0, 1.02, 0.98]]), torch.ones(1, 3), std_floor=0.1)  # spread 0.02 < floor: not blown up
    tensor([[ 0.0000,  0.2000, -0.2000]])
    """
    std = masked_var(x, mask).sqrt().clamp(min=max(std_floor, 1e-4))
    return (x - masked_mean(x, mask)) / std * mask


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and returns (Schulman et al. 2016) over completion tokens [batch, time].

    delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lam A_{t+1}, returns = A + V; V is 0 past the end.
    """
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * running
        advantages[:, t] = running
    return advantages * mask, (advantages + values) * mask


def policy_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The clipped surrogate (Schulman et al. 2017) as a loss; also the clipped fraction and approx KL (k3)."""
    logratio = logprobs - old_logprobs
    ratio = torch.exp(logratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    approx_kl = masked_mean((ratio - 1.0) - logratio, mask)  # k3 (Schulman, "Approximating KL divergence")
    return loss, clipfrac.detach(), approx_kl.detach()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """0.5 * max((V - R)^2, (V_clipped - R)^2), V clipped to old_values +- clip (TRL, Huang et al.); clip fraction."""
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped_loss = (values - returns) ** 2
    clipped_loss = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped_loss, clipped_loss), mask)
    return loss, masked_mean((clipped_loss > unclipped_loss).float(), mask).detach()


# ---------------------------------------------------------------- models


def use_adapter(model, name: str) -> None:
    """Switch the active LoRA adapter. PEFT's set_adapter freezes the inactive one; both must stay trainable."""
    model.base_model.set_adapter(name)
    model.set_requires_grad([POLICY, CRITIC], True)


def policy_logits(policy: nn.Module, input_ids, attention_mask, n: int) -> torch.Tensor:
    """Logits that predict the last `n` tokens. Positions count from the first real token (prompts are left-padded,
    and `generate` numbers positions the same way)."""
    position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
    out = policy(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, logits_to_keep=n + 1)
    return out.logits[:, :-1]


class PolicyAndCritic(nn.Module):
    """Everything trainable in one module, so that one DDP/DeepSpeed wrapper and one forward cover both.

    `critic` is None when the critic is the "critic" adapter on the policy's own PeftModel.
    """

    def __init__(self, policy: nn.Module, critic: nn.Module | None, hidden_size: int) -> None:
        super().__init__()
        self.policy, self.critic = policy, critic
        self.value_head = nn.Linear(hidden_size, 1)
        # Zero init: every value starts at 0, so the first advantages are the plain returns.
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Policy logits and critic values at the positions that predict the last `n` tokens: [B, n, V], [B, n]."""
        position_ids = (attention_mask.cumsum(1) - 1).clamp(min=0)
        if self.critic is None:
            use_adapter(self.policy, CRITIC)
        out = (self.policy if self.critic is None else self.critic)(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=True,
            logits_to_keep=1,
        )
        hidden = out.hidden_states[-1][:, -n - 1 : -1]
        values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1)
        if self.critic is None:
            use_adapter(self.policy, POLICY)  # the policy is the active adapter outside this forward
        return policy_logits(self.policy, input_ids, attention_mask, n), values


def build_models(
    model_path: str, tokenizer, recipe: Recipe, args: PPOSettings
) -> tuple[PolicyAndCritic, nn.Module | None]:
    """The trainable PolicyAndCritic and the frozen reference: None when LoRA is on (the policy's own base with the
    adapters disabled serves), else a frozen copy of the base."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    def load(path: str) -> nn.Module:
        return AutoModelForCausalLM.from_pretrained(path, **model_init_kwargs(recipe))

    policy = load(model_path)
    reference = copy.deepcopy(policy).requires_grad_(False) if not recipe.lora.enabled else None
    if recipe.lora.enabled:
        policy = get_peft_model(policy, lora_config(recipe), adapter_name=POLICY)
    critic = None
    if args.value_model:
        value_path = plain_checkpoint(args.value_model)
        if load_tokenizer(value_path).get_vocab() != tokenizer.get_vocab():
            raise ValueError(f"ppo.value_model: {args.value_model} must use the policy's tokenizer")
        critic = load(value_path)
        critic = get_peft_model(critic, lora_config(recipe)) if recipe.lora.enabled else critic
    elif recipe.lora.enabled:
        policy.add_adapter(CRITIC, lora_config(recipe))
        use_adapter(policy, POLICY)
    else:
        critic = load(model_path)
    net = PolicyAndCritic(policy, critic, (policy if critic is None else critic).config.hidden_size)
    return net.eval(), (reference.eval() if reference is not None else None)


def save_models(net: PolicyAndCritic, folder: Path, with_critic: bool = True) -> None:
    """The policy at the top of `folder` (loads with plain transformers + peft); the critic in `folder/critic`
    (PEFT puts the non-default "critic" adapter there itself) and its head in value_head.safetensors."""
    from safetensors.torch import save_file

    if net.critic is None:
        net.policy.save_pretrained(folder, selected_adapters=[POLICY, CRITIC] if with_critic else [POLICY])
    else:
        net.policy.save_pretrained(folder)
        if with_critic:
            net.critic.save_pretrained(folder / "critic")
    if with_critic:
        save_file(net.value_head.state_dict(), folder / "value_head.safetensors")


# ---------------------------------------------------------------- rollout and update


@lru_cache(maxsize=4)
def _shuffled(n: int, seed: int, epoch: int) -> list[int]:
    order = list(range(n))
    random.Random(seed * 100_003 + epoch).shuffle(order)
    return order


def prompt_rows(n: int, step: int, size: int, seed: int) -> list[int]:
    """Dataset rows of rollout `step` (1-based): the next `size` rows of a stream of seeded per-epoch shuffles, so
    a resumed run needs only the step number to continue the same order."""
    return [_shuffled(n, seed, pos // n)[pos % n] for pos in range((step - 1) * size, step * size)]


@torch.no_grad()
def rollout(
    net: PolicyAndCritic, reference: nn.Module | None, tokenizer, rows: dict, args: PPOSettings, rewards: list
):
    """Sample, score and evaluate one completion per prompt of `rows` (dataset columns); `rewards` holds (function,
    weight) pairs. Returns the tensors the update needs and each reward function's per-completion values."""
    device = net.value_head.weight.device
    prompts = rows["prompt"]
    chat = not isinstance(prompts[0], str)  # messages (template: chat) or text (template: plain), as in to_dataset
    texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False) for p in prompts]
    query = tokenizer(texts if chat else prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    query = query.to(device)
    sequences = net.policy.generate(
        **query,
        do_sample=True,
        temperature=args.temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=args.max_new_tokens,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    response = sequences[:, query["input_ids"].shape[1] :]
    is_eos = response == tokenizer.eos_token_id
    mask = ((is_eos.cumsum(1) - is_eos.long()) == 0).float()  # tokens up to and including the first eos
    attention_mask = torch.cat([query["attention_mask"], mask.long()], dim=1)

    # ---- score with the recipe's reward functions, called as TRL calls them
    ids = [r[m.bool()].tolist() for r, m in zip(response, mask)]
    decoded = tokenizer.batch_decode(ids, skip_special_tokens=True)
    completions = [[{"role": "assistant", "content": t}] for t in decoded] if chat else decoded
    columns = {k: v for k, v in rows.items() if k != "prompt"}
    # None (a step the variant lacks) is NaN and adds nothing, as in TRL's GRPO (nansum over the weighted rewards).
    per_func = {
        fn.__name__: torch.tensor(
            [
                torch.nan if r is None else r
                for r in fn(prompts=prompts, completions=completions, completion_ids=ids, **columns)
            ],
            dtype=torch.float,
        )
        for fn, _ in rewards
    }
    scores = sum(weight * per_func[fn.__name__].nan_to_num(0.0) for fn, weight in rewards).float().to(device)

    # ---- log-probs, values and reference log-probs, in mini-batches
    n = response.shape[1]
    logprobs, values, ref_logprobs = [], [], []
    for i in range(0, len(sequences), args.mini_batch_size):
        seq, att, res = (t[i : i + args.mini_batch_size] for t in (sequences, attention_mask, response))
        logits, value = net(seq, att, n)
        logprobs.append(selective_log_softmax(logits, res, args.temperature))
        values.append(value)
        if reference is None:  # LoRA: the base itself, adapters disabled, is the reference
            with net.policy.disable_adapter():
                ref_logits = policy_logits(net.policy, seq, att, n)
        else:
            ref_logits = policy_logits(reference, seq, att, n)
        ref_logprobs.append(selective_log_softmax(ref_logits, res, args.temperature))
    logprobs, values, ref_logprobs = torch.cat(logprobs), torch.cat(values), torch.cat(ref_logprobs)

    # ---- per-token rewards: the KL penalty on every token, the score on the last one
    kl = (logprobs - ref_logprobs) * mask
    last = mask.sum(1).long() - 1
    batch = {"input_ids": sequences, "attention_mask": attention_mask, "response": response, "mask": mask}
    batch.update(logprobs=logprobs, values=values * mask, scores=scores, kl=kl, last=last)
    return batch, per_func


def advantages_and_returns(batch: dict, kl_coef: float, args: PPOSettings) -> dict[str, float]:
    """Add per-token rewards, advantages and returns to the rollout `batch`; return rollout diagnostics."""
    mask = batch["mask"]
    rewards = -kl_coef * batch["kl"]
    rewards[torch.arange(len(rewards)), batch["last"]] += batch["scores"]
    advantages, returns = gae(rewards, batch["values"], mask, args.gamma, args.lam)
    batch["advantages"] = whiten(advantages, mask, args.advantage_std_floor) if args.whiten_advantages else advantages
    batch["returns"] = returns
    returns_var = masked_var(returns, mask).item()
    residual_var = masked_var(returns - batch["values"], mask).item()
    return {
        "kl": batch["kl"].sum(1).mean().item(),  # sequence KL to the reference (k1), what the controller tracks
        "completion_length": mask.sum(1).mean().item(),
        "explained_variance": 1.0 - residual_var / returns_var if returns_var > 1e-8 else 0.0,
        "value_mean": masked_mean(batch["values"], mask).item(),
    }


def ppo_update(net, optimizer, accelerator, batch: dict, args: PPOSettings) -> dict[str, float]:
    """`ppo_epochs` passes of clipped policy + value loss over shuffled mini-batches; stop early past target_kl."""
    stats = defaultdict(list)
    n = batch["response"].shape[1]
    for epoch in range(args.ppo_epochs):
        for idx in torch.randperm(len(batch["response"])).split(args.mini_batch_size):
            mb = {k: v[idx] for k, v in batch.items()}
            logits, values = net(mb["input_ids"], mb["attention_mask"], n)
            logprobs = selective_log_softmax(logits, mb["response"], args.temperature)
            pg_loss, pg_clipfrac, approx_kl = policy_loss(
                logprobs, mb["logprobs"], mb["advantages"], mb["mask"], args.cliprange
            )
            vf_loss, vf_clipfrac = value_loss(values, mb["values"], mb["returns"], mb["mask"], args.cliprange_value)
            accelerator.backward(pg_loss + args.vf_coef * vf_loss)
            # Under DeepSpeed, backward() already stepped and clipped (gradient_clipping in the accelerate config).
            grad_norm = accelerator.clip_grad_norm_(net.parameters(), args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad()
            with torch.no_grad():
                entropy = masked_mean(entropy_from_logits(logits.detach() / args.temperature), mb["mask"])
            stats["loss/policy"].append(pg_loss.item())
            stats["loss/value"].append(vf_loss.item())
            stats["clipfrac/policy"].append(pg_clipfrac.item())
            stats["clipfrac/value"].append(vf_clipfrac.item())
            stats["approx_kl"].append(approx_kl.item())
            stats["entropy"].append(entropy.item())
            if grad_norm is not None:  # a tensor, DeepSpeed's float, or None
                stats["grad_norm"].append(float(grad_norm))
            # The same decision on every process, so that all take the same number of optimizer steps.
            if args.target_kl is not None and accelerator.reduce(approx_kl, "mean").item() > args.target_kl:
                return {**{k: sum(v) / len(v) for k, v in stats.items()}, "ppo_epochs": epoch + 1}
    return {**{k: sum(v) / len(v) for k, v in stats.items()}, "ppo_epochs": args.ppo_epochs}


# ---------------------------------------------------------------- main


def main(recipe: Recipe, resume: bool = True) -> Path:
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DistributedType, set_seed

    # ---- config, run folder, data
    args = trainer_config(recipe)
    run = prepare_run(recipe, resume)
    train_dataset = to_dataset(run.train, recipe.prompt)

    # ---- model and tokenizer (one base copy: policy adapter, critic adapter, reference = adapters disabled)
    model_path = plain_checkpoint(recipe.model.name_or_path, recipe.model.gguf_file)
    tokenizer = load_tokenizer(model_path, padding_side="left")
    PartialState(cpu=args.use_cpu)  # as the HF Trainer does: on CPU the gloo group first, DeepSpeed then runs on it
    accelerator = Accelerator()
    set_seed(recipe.seed, device_specific=True)  # DDP/DeepSpeed broadcast rank 0's initial weights
    net, reference = build_models(model_path, tokenizer, recipe, args)
    rewards = [(resolve_reward(name), weight) for name, weight in recipe.rewards.items()]

    # ---- optimizer and accelerate; checkpoints keep the trainable weights only, never the frozen base
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    if deepspeed:
        plugin = accelerator.state.deepspeed_plugin
        if plugin.zero_stage == 3:
            raise ValueError("ppo: DeepSpeed ZeRO-3 is not supported (generation uses the unwrapped model)")
        # No dataloader for accelerate to infer the batch sizes from; one optimizer step per mini-batch.
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = args.mini_batch_size
        plugin.deepspeed_config["train_batch_size"] = args.mini_batch_size * accelerator.num_processes
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=args.learning_rate)
    model, optimizer = accelerator.prepare(net, optimizer)
    unwrapped = accelerator.unwrap_model(model)  # rollouts, saving and eval skip the DDP/DeepSpeed wrapper
    if reference is not None:
        reference.to(accelerator.device)
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}  # accelerate saves the unwrapped net
    accelerator.register_save_state_pre_hook(
        lambda models, weights, folder: [w.pop(k) for w in weights for k in list(w) if k not in trainable]
    )
    save_kwargs = {"exclude_frozen_parameters": True} if deepspeed else {}
    load_kwargs = {"load_module_strict": False} if deepspeed else {"strict": False}
    kl_ctl = KLController(args.kl_coef, args.kl_target if args.adaptive_kl else None, args.kl_horizon)
    start = 0
    if run.resume_from:
        accelerator.load_state(run.resume_from, **load_kwargs)
        state = json.loads((Path(run.resume_from) / "trainer_state.json").read_text())
        start, kl_ctl.value = state["step"], state["kl_coef"]

    # ---- logging: metrics.jsonl and W&B on the main process; the eval hook
    wandb = None
    if accelerator.is_main_process and recipe.logging.wandb and recipe.logging.mode != "disabled":
        import wandb

        wandb.init(
            project=recipe.logging.project, mode=recipe.logging.mode, dir=str(run.dir), config=recipe_dict(recipe)
        )

    def log(step: int, logs: dict) -> None:
        if accelerator.is_main_process and logs:
            append_metrics(run.dir / "metrics.jsonl", step, logs)
            if wandb is not None and "event" not in logs:
                wandb.log(logs, step=step)

    def save(folder: Path, step: int) -> None:
        accelerator.save_state(str(folder), **save_kwargs)  # every process: optimizer, RNG, trainable weights
        if accelerator.is_main_process:
            save_models(unwrapped, folder)
            save_alongside(folder, tokenizer, run.dir)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:  # written last: runs.last_checkpoint skips a folder without it
            (folder / "trainer_state.json").write_text(json.dumps({"step": step, "kl_coef": kl_ctl.value}) + "\n")
        accelerator.wait_for_everyone()

    hook = EvalHook(recipe.eval, recipe.prompt)
    world, rank = accelerator.num_processes, accelerator.process_index
    log(start, {"event": "start", "world_size": world, "resumed_from": run.resume_from})  # as runs.MetricsLogger

    # ---- train: rollout -> advantages -> PPO epochs, per step
    for step in range(start + 1, args.steps + 1):
        started = time.time()
        rows = prompt_rows(len(train_dataset), step, args.batch_size * world, recipe.seed)
        shard = train_dataset[rows[rank * args.batch_size : (rank + 1) * args.batch_size]]
        with accelerator.autocast():  # the update's precision, so that rollout and update log-probs agree
            batch, per_func = rollout(unwrapped, reference, tokenizer, shard, args, rewards)
        stats = advantages_and_returns(batch, kl_ctl.value, args)
        rolled_out = time.time()
        stats.update(ppo_update(model, optimizer, accelerator, batch, args))
        reduced = accelerator.reduce(torch.tensor(list(stats.values()), device=accelerator.device), "mean")
        stats = dict(zip(stats, reduced.tolist()))
        kl_coef = kl_ctl.value
        kl_ctl.update(stats["kl"], args.batch_size * world)

        if step % args.logging_steps == 0:
            scores = accelerator.gather(batch["scores"])
            logs = {"reward": scores.mean().item(), "reward_std": scores.std().item() if len(scores) > 1 else 0.0}
            for name, values in per_func.items():
                logs[f"rewards/{name}/mean"] = accelerator.gather(values.to(accelerator.device)).nanmean().item()
            logs.update(stats, learning_rate=optimizer.param_groups[0]["lr"], kl_coef=kl_coef)
            logs.update({"time/rollout": rolled_out - started, "time/update": time.time() - rolled_out})
            log(step, logs)
        if args.save_steps and step % args.save_steps == 0:
            save(run.dir / f"checkpoint-{step}", step)
        if recipe.eval.every_steps and (
            step % recipe.eval.every_steps == 0 or (recipe.eval.at_end and step == args.steps)
        ):
            log(step, hook.run(unwrapped.policy, tokenizer, step))

    # ---- save the policy adapter + tokenizer + recipe to <run>/final, as the other methods do
    final = run.dir / "final"
    if accelerator.is_main_process:
        save_models(unwrapped, final, with_critic=False)
        save_alongside(final, tokenizer, run.dir)
        if wandb is not None:
            wandb.finish()
    accelerator.wait_for_everyone()
    return final
