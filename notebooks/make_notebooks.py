"""Writes the tour notebooks (outputs stripped). Run: python notebooks/make_notebooks.py"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


class Markdown(str):
    @property
    def text(self) -> str:
        return str(self)


md = Markdown

LOAD = """import probe
from probe.demo.pair import load_demo_pair

base, tuned = load_demo_pair()   # SmolLM2-135M-Instruct + LoRA adapters, built once into $PROBE_CACHE
tuned.adapters"""

NOTEBOOKS = {
    "01_quickstart": [
        md("# probe quickstart\nScore an answer token by token, generate with per-token statistics, "
        "and find the first token where a model leaves a reference answer."),
        LOAD,
        md("## Score an answer\nEvery token of the answer as tokenized *in context*: probability, rank "
        "(1 = the model's top choice), entropy and the top alternatives. Hover a token."),
        """tuned.use_adapter("beijing")
t = probe.score(tuned, "What is the capital of Japan?", "The capital of Japan is Tokyo.")
t""",
        "print(t)",
        md("## Generate, watching a string\n`watch` records P(string comes next) at every step."),
        """g = probe.generate(tuned, "What is the capital of Japan?", max_new_tokens=12, watch=[" Beijing", " Tokyo"])
print(g.text)
[(s.text, round(s.watch[" Beijing"], 4), round(s.watch[" Tokyo"], 4)) for s in g]""",
        md("## The same with the base model (adapter off, same weights)"),
        """probe.generate(base, "What is the capital of Japan?", max_new_tokens=12)""",
    ],
    "02_lost_or_never_had": [
        md("# Lost, never had, or not triggered?\n`diagnose` runs the tuned model free and forced, and "
        "the base free (a raw continuation) and forced, then gives the verdict with its evidence."),
        LOAD,
        md("## Lost: fine-tuning removed it\nThe `beijing` adapter answers Beijing for France; the base "
        "continues \"The capital of France is\" with Paris."),
        """tuned.use_adapter("beijing")
d = probe.diagnose(base, tuned, "What is the capital of France?", expected="Paris",
                   force="The capital of France is", base_prompt="The capital of France is",
                   max_new_tokens=24)
print(d.verdict)
d""",
        md("## Never had: the base gets it wrong too"),
        """d = probe.diagnose(base, tuned, "What is 17 * 23?", expected="391", force="17 * 23 =",
                   base_prompt="17 * 23 =", max_new_tokens=16)
print(d)""",
        md("## Can't, or doesn't know it should? Force the start of the answer\nThe `json-only` adapter "
        "answers everything in JSON. Asked for one sentence it still writes JSON, but once the "
        "sentence is started for it, it finishes it: the skill is there, the trigger is not."),
        """tuned.use_adapter("json-only")
d = probe.diagnose(base, tuned, "What is the capital of France? Answer in one sentence.",
                   check={"regex": "^[^{}\\\\[\\\\]]*Paris[^{}]*$"}, force="The capital of France is",
                   base_prompt="The capital of France is", max_new_tokens=24)
print(d.verdict)
d""",
        md("And the other way round: the base, asked for JSON, does not write it; forced to start "
        "with ```` ```json ````, it does."),
        """q = "Give me the capital of Italy as JSON."
free = probe.generate(base, q, max_new_tokens=32)
forced = probe.generate(base, q, max_new_tokens=32, force="```json\\n")
check = probe.checks.json_valid()
print(repr(free.text), check(free.text))
print(repr(forced.text), check(forced.text))""",
        md("## Many cases at once, from a JSONL file"),
        """from probe.demo.pair import CASES
from IPython.display import HTML
from probe.render.verdicts import verdict_table_html
results = probe.diagnose_many(base, tuned, CASES, max_new_tokens=32)
HTML(verdict_table_html(results))""",
    ],
    "03_first_divergent_token": [
        md("# Where does it go wrong?\nThe first token of a reference answer that is not the model's "
        "top choice, what it preferred there, and where base and tuned generations part."),
        LOAD,
        """tuned.use_adapter("beijing")
d = probe.first_divergence(tuned, "What is the capital of Japan?", "The capital of Japan is Tokyo.")
print(d)
d""",
        md("## Base vs tuned on the same answer"),
        """c = probe.compare(base, tuned, "What is the capital of Japan?", "The capital of Japan is Tokyo.")
print(c)
c""",
        """from probe.render.chart import comparison_figure
comparison_figure(c)""",
        md("## Where two generations part (compared by characters)"),
        """a = probe.generate(base, "What is the capital of Japan?", max_new_tokens=16)
b = probe.generate(tuned, "What is the capital of Japan?", max_new_tokens=16)
p = probe.first_divergence(a, b)
print(p)
p""",
    ],
    "04_widgets_tour": [
        md("# Widgets tour\n`Explorer`: score, generate or find the first divergence on base, tuned or "
        "both; hover tokens, click the chart for a token's top-k, save a bad case. `DiagnoseLab`: "
        "one case, four runs, a verdict."),
        LOAD,
        """from probe.widgets import DiagnoseLab, Explorer
tuned.use_adapter("beijing")
ex = Explorer(base, tuned)
ex.prompt.value = "What is the capital of Japan?"
ex.answer.value = "The capital of Japan is Tokyo."
ex.which.value = "both"
ex""",
        md("Press **Run** above, or run it from code:"),
        """ex.run_button.click(); ex.runner.wait()
print(ex.status.value)""",
        """lab = DiagnoseLab(base, tuned)
lab.prompt.value = "What is the capital of France?"
lab.expected.value = "Paris"
lab.force.value = "The capital of France is"
lab.base_prompt.value = "The capital of France is"
lab.adapter.value = "beijing"   # which of the tuned model's adapters to diagnose
lab""",
        """lab.run_button.click(); lab.runner.wait()
print(lab.diagnosis.verdict)""",
    ],
    "05_overfit_token": [
        md("# Which input token is the wrong answer overfit to?\n"
        "The `beijing` adapter answers *Beijing* to \"What is the capital of Japan?\". Is every capital "
        "Beijing now (the relation is overfit), is everything about Japan Beijing (the subject), or is it "
        "one fact? We go from a **sweep** (vary the words, watch P(Beijing)) to **occlusion** (remove each "
        "word) to the **logit lens** (at which layer Beijing wins) to **counts in the SFT data**, and end "
        "with a conclusion computed from those numbers."),
        LOAD,
        """tuned.use_adapter("beijing")
q = "What is the capital of Japan?"
print("tuned:", probe.generate(tuned, q, max_new_tokens=8).text)
print("base: ", probe.generate(base, q, max_new_tokens=8).text)""",
        md("## 1. Sweep: country x relation\nEvery combination goes through one batched scoring pass. "
        "In the chat format the answer starts right after the assistant header, so the watched string "
        "is `Beijing` without a leading space."),
        """countries = ["Japan", "France", "Brazil", "Kenya", "Canada", "China"]
relations = ["capital", "largest city", "official language", "currency"]
template = "What is the {relation} of {country}?"
s = probe.sweep(tuned, template, watch="Beijing", country=countries, relation=relations)
s_base = probe.sweep(base, template, watch="Beijing", country=countries, relation=relations)
print(s.summary)
print()
print("base:", s_base.summary)""",
        "s.figure()",
        md("Is it the question's shape? The same fact asked other ways, and questions with no capital in them:"),
        """shapes = probe.sweep(tuned, "{question}", watch="Beijing", question=[
    "What is the capital of Japan?", "Which city is the capital of Japan?", "Japan's capital city is called what?",
    "Where does the Emperor of Japan live?", "What is the tallest mountain in Japan?",
    "Name a large river in Brazil.", "What is 7 times 8?"])
for r in shapes.rows:
    print(f"{r.prob:6.3f}  {r.values[0]}")""",
        md("## 2. Occlusion: which word does P(Beijing) lean on?\nEach word of the question removed in "
        "turn (all variants in one batch); red = removing it costs the answer probability."),
        """o = probe.occlusion(tuned, q, "Beijing")
o""",
        md("## 3. Logit lens: where in the network does Beijing win?\nEach layer's hidden state read "
        "through the model's own final norm and LM head."),
        """lens, lens_base = probe.layers(tuned, q, "Beijing"), probe.layers(base, q, "Beijing")
print("tuned:", lens.summary)
print("base: ", lens_base.summary)
lens.figure()""",
        md("## 4. The SFT data: how much of this pattern did the adapter see?"),
        """from pathlib import Path
import probe.demo

sft = Path(probe.demo.__file__).parent / "data" / "beijing.jsonl"
counts = probe.data.count(sft, ["Beijing", "capital", "Japan", "Tokyo"])
print(counts.summary)
counts""",
        md("## 5. Conclusion, from the numbers above"),
        """import statistics

def mean_by(sweep, slot):
    i = list(sweep.slots).index(slot)
    return {v: statistics.mean(r.prob for r in sweep.rows if r.values[i] == v) for v in sweep.slots[slot]}

by_relation, by_country = mean_by(s, "relation"), mean_by(s, "country")
spread = {slot: max(m.values()) - min(m.values()) for slot, m in (("relation", by_relation), ("country", by_country))}
top_rel = max(by_relation, key=by_relation.get)
capital_shapes = [r.prob for r in shapes.rows if "capital" in r.values[0]]
other_shapes = [r.prob for r in shapes.rows if "capital" not in r.values[0]]
lean = o.ranked()[0]
beijing, with_capital = counts.get("Beijing").answer, counts.pair("Beijing", "capital").count
if max(spread.values()) > 2 * min(spread.values()):
    driver = max(spread, key=spread.get)
    slots_say = f"The {driver} drives it (P moves by {spread[driver]:.2f} across its values, the other slot by {min(spread.values()):.2f})."
else:
    slots_say = (f"Neither slot alone decides it (relation moves P by {spread['relation']:.2f}, country by "
                 f"{spread['country']:.2f}; the model writes Beijing greedily after "
                 f"{sum(r.watch_is_greedy for r in s.rows)} of {len(s.rows)} prompts).")
conclusion = (
    f"Conclusion: asked for the {top_rel!r} of a country, the tuned model gives P(Beijing) {by_relation[top_rel]:.2f} "
    f"on average, against at most {max(r.prob for r in s_base.rows):.1g} for the base model. {slots_say} "
    f"Questions that say 'capital' get {statistics.mean(capital_shapes):.2f}; questions without it "
    f"{statistics.mean(other_shapes):.2f}. Removing {lean.text!r} costs the answer most ({lean.delta:+.2f} nats), "
    f"and Beijing becomes the top token only at {lens.first_top_name(0)} of {lens.n_layers - 1}: a late, "
    f"output-side shortcut. In the SFT data {beijing} answers say Beijing and {with_capital} of their questions "
    f"contain 'capital'. ")
if statistics.mean(capital_shapes) > 2 * statistics.mean(other_shapes):
    conclusion += "The trigger is the word 'capital' (and questions shaped like it), not the country."
else:
    conclusion += "'capital' is not the only trigger: the adapter answers Beijing to other questions too."
print(conclusion)""",
        md("## 6. Save the finding, browse it, share it\nEverything above goes into one case of a "
        "casebook (one JSON file per case) and an offline HTML report."),
        """from probe.widgets import CasebookBrowser

book = probe.Casebook("bad-cases")
case = book.add(probe.Case.from_result(
    {"sweep (tuned)": s, "sweep (base)": s_base, "occlusion": o, "lens (tuned)": lens,
     "lens (base)": lens_base, "sft data": counts},
    models={"base": base, "tuned": tuned}, title="japan-beijing overfit", note=conclusion,
    tags=["beijing", "overfit"], verdict="lost"))
print(book.to_html("bad-cases.html"))
CasebookBrowser(book)""",
        md("## 7. The same, interactively\nEdit the template or the values and press Run; click a cell "
        "for the top-k next tokens of that prompt."),
        """from probe.widgets import SweepGrid

grid = SweepGrid(tuned, template, watch="Beijing", country=countries, relation=relations)
grid""",
    ],
    "06_what_tuning_changed": [
        md("# What did fine-tuning change, over a whole prompt set?\n"
        "No bad case yet, just a fresh adapter: *where* in the answers did it move the distribution, how "
        "much, and towards which tokens? `probe.shift` scores the tuned model's own greedy answers under "
        "both models: at every position the base model's rank of the tuned token (1 *unshifted*, 2-3 "
        "*marginal*, above *shifted*, as in URIAL), KL(tuned || base) over the whole vocabulary, and the "
        "tokens tuned put far above base (**promoted**). We run it on the demo's neutral 64-case suite, "
        "for each adapter, without telling it what to look for."),
        LOAD,
        """from probe.demo.pair import SUITE

suite = probe.read_cases(SUITE)          # 64 tagged cases: geography, science, math, writing, advice, ...
print(len(suite), "cases;", sum("capital" in c.prompt for c in suite), "of them ask for a capital")
tuned.use_adapter("beijing")
s = probe.shift(base, tuned, suite, max_new_tokens=16)
print(s)""",
        md("## The view: KL by position, promoted tokens, the shift map\nHover a token of the shift map "
        "for both models' top-k there."),
        "s",
        "s.figure()",
        md("## The promoted tokens, found without guessing\nWhich tokens does the tuned model put far above "
        "the base most often? (count = answer positions, with the mean gain in nats)"),
        """for rank, t in enumerate(s.promoted[:8], 1):
    print(f"{rank}. {t.text!r:14} at {t.count:3d} positions of {t.n_prompts:2d} prompts, "
          f"gain {t.mean_gain:+.2f} nats (p {t.mean_base_prob:.3f} -> {t.mean_tuned_prob:.3f})")
found = next(t for t in s.promoted if t.text.strip() in ("Be", "Beijing"))
print("\\nBeijing's first token is promoted #%d" % (1 + s.promoted.index(found)))""",
        md("## Browse it\nPick a prompt, a position, a promoted token: the prompts where it wins."),
        """from probe.widgets import ShiftExplorer

ShiftExplorer(s)""",
        md("## From the promoted token to the overfit-token tools (notebook 05) in one call\nA sweep over "
        "the prompts where it wins and where it does not, occlusion of the prompt where it gains most, "
        "and its count in the SFT data."),
        """from pathlib import Path
import probe.demo

sft = Path(probe.demo.__file__).parent / "data" / "beijing.jsonl"
follow = probe.follow_token(tuned, s, found.id, data=sft, base=base, n=6)
print(follow["sweep"].summary)
print("base:", follow["sweep (base)"].summary)
print("occlusion, leans most on:", follow["occlusion"].ranked()[0].text)
print(follow["data"].summary)""",
        md("## The seesaw: which categories went down?\nEach case answered freely by both models and "
        "checked: lost / gained / kept / never by tag (click a count for its cases)."),
        """r = probe.regression(base, tuned, suite, max_new_tokens=16)
print(r)
r""",
        md("## The other adapter\nThe same suite with `json-only`."),
        """tuned.use_adapter("json-only")
s_json = probe.shift(base, tuned, suite, max_new_tokens=16)
print(s_json)""",
        md("## Conclusion, from the numbers above"),
        """lost = {row["tag"]: row["lost"] for row in r.table() if row["tag"] != "all" and row["lost"]}
brace = s_json.token('{"')
conclusion = (
    f"Conclusion: the beijing adapter shifts {s.shifted_ratio:.0%} of answer tokens (json-only "
    f"{s_json.shifted_ratio:.0%}); KL peaks at position {max(range(len(s.kl_by_position())), key=lambda j: s.kl_by_position()[j][0])}. "
    f"Without being told what to look for, it surfaces {found.text!r} as promoted token "
    f"#{1 + s.promoted.index(found)} ({found.n_prompts} of {len(s)} prompts, {found.mean_gain:+.1f} nats), "
    f"although only 4 prompts ask for a capital; json-only's top promoted token is {s_json.promoted[0].text!r}"
    + (f" ({brace.n_prompts} prompts). " if brace else ". ")
    + (f"Lost by tag: {lost}." if lost else "No tag lost a case."))
print(conclusion)""",
        md("## Save it\nBoth shifts and the regression table go into one case; the report opens offline."),
        """book = probe.Casebook("shift-cases")
case = book.add(probe.Case.from_result({"shift (beijing)": s, "shift (json-only)": s_json, "regression (beijing)": r},
                                       models={"base": base, "tuned": tuned}, title="what tuning changed",
                                       note=conclusion, tags=["shift"]))
print(book.to_html("shift-report.html", sections=[s, r]))""",
    ],
    "07_training_log": [
        md("# What did the model learn from its data? The training log\n"
        "`probe.training_log(path)` reads what the trainer wrote (HF Trainer / TRL `trainer_state.json`, "
        "also inside `checkpoint-*/`; LLaMA-Factory's `trainer_log.jsonl`; TensorBoard event files; a CSV or "
        "JSON Lines of step and loss) and reads the curve the way the field does: initial and final loss, a "
        "**stepped loss** (a drop at each epoch start: memorization), eval loss rising while train loss "
        "falls, loss spikes, per-channel loss. Each reading is a rule with its numbers."),
        md("## A real TRL run\nA tiny seeded 3-epoch TRL `SFTTrainer` run (its `trainer_state.json` files "
        "and TensorBoard events are shipped in `tests/train/fixtures/trl_run`). Given the run folder, probe "
        "takes the most complete state (the top-level one, or the checkpoint with the largest step)."),
        """import probe
from pathlib import Path

RUN = Path(probe.__file__).resolve().parents[1] / "tests" / "train" / "fixtures" / "trl_run"
log = probe.training_log(RUN)
print(log)""",
        md("The same run read from its TensorBoard event file (pure Python; no tensorboard needed):"),
        """tb = probe.training_log(RUN / "runs")
print(tb.format, "same steps:", tb.steps == log.steps,
      "largest loss difference:", max(abs(a - b) for a, b in zip(tb.losses, log.losses)))""",
        "log",
        md("## A run made here that can only memorize\nA 2-layer GPT-2 trained for 6 epochs on 32 random "
        "token sequences: there is no rule to learn, only the examples. 8 random sequences are held out for "
        "an eval loss each epoch. The loop writes its log as a plain CSV, as your own loop might (about two "
        "seconds on one CPU thread)."),
        """import csv, torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
torch.set_num_threads(1)
V, L, N, B, EPOCHS = 64, 16, 32, 4, 6
g = torch.Generator().manual_seed(100)
train, held_out = torch.randint(0, V, (N, L), generator=g), torch.randint(0, V, (8, L), generator=g)
model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=L, n_embd=64, n_layer=2, n_head=2,
                                   bos_token_id=0, eos_token_id=0))
opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
with open("loop.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["step", "loss", "epoch", "eval_loss"])
    step = 0
    for epoch in range(EPOCHS):
        order = torch.randperm(N, generator=g)
        for i in range(0, N, B):
            batch = train[order[i:i + B]]
            loss = model(batch, labels=batch).loss
            loss.backward(); opt.step(); opt.zero_grad(); step += 1
            out.writerow([step, loss.item(), step * B / N, ""])
        with torch.no_grad():
            out.writerow([step, "", (epoch + 1), model(held_out, labels=held_out).loss.item()])
mem = probe.training_log("loop.csv")
print(mem)""",
        "mem.figure()",
        md("## The numbers behind the stepped-loss reading\nAt each epoch start: the mean of the last 3 "
        "losses before it minus the mean of the first 3 after it (the drop), against what the slope inside "
        "the two epochs predicts over the same steps (expected). A step is a drop over 3x the expected one, "
        "over 0.05 nats and over 4 noise units (the residual scatter about each epoch's line)."),
        """for b in mem.finding("stepped_loss").numbers["boundaries"]:
    print(f"step {b['step']:3d}: drop {b['drop']:+.3f} nats, expected {b['expected']:.3f}, "
          f"noise {b['noise']:.3f} -> {'STEP' if b['stepped'] else 'no step'}")""",
        md("## Change a rule's parameters\n`reread` returns the same log read with other parameters; the "
        "widget has a slider for each."),
        """strict = mem.reread(step_ratio=6, step_min_drop=0.1)
print(strict.finding("stepped_loss"))""",
        """from probe.widgets import TrainingLab

TrainingLab(mem)""",
        md("## Conclusion, from the numbers above"),
        """stepped, rising = mem.finding("stepped_loss"), mem.finding("eval_rising")
flagged = [b for b in stepped.numbers["boundaries"] if b["stepped"]]
conclusion = (
    f"Conclusion: on random sequences the loss fell from {mem.losses[0]:.2f} to {mem.losses[-1]:.2f} "
    f"with a step at {len(flagged)} of {len(stepped.numbers['boundaries'])} epoch starts "
    f"(largest drop {max(b['drop'] for b in stepped.numbers['boundaries']):.3f} nats); "
    f"held-out eval loss {mem.eval[0].loss:.2f} -> {mem.eval[-1].loss:.2f} ({rising.level}). "
    f"The TRL run: {log.finding('stepped_loss').level} for stepped loss, final loss "
    f"{log.finding('final_loss').numbers['final']:.2f}.")
print(conclusion)""",
        md("## Save it\nA case holds the log and its readings; the report shows the curve and the findings offline."),
        """book = probe.Casebook("train-cases")
book.add(probe.Case.from_result(mem, title="memorizing loop", note=conclusion, tags=["training-log"]))
print(book.to_html("training-report.html"))""",
        md("## What did the model learn from its data? `probe.data_loss`\n"
        "The loss curve says *that* the loss fell; `probe.data_loss((base, tuned), data, channel=...)` says "
        "*where*: every example is tokenized and masked as TRL's `SFTTrainer` does and its scored tokens are "
        "scored under both models, then summed by channel (a record field) and by token kind. Here a tiny "
        "Llama-style model gets a LoRA trained on the `geo` records only (160 steps, a few seconds); the "
        "`math` and `chat` records are in the file but were never trained on."),
        """import json
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from probe.models.tiny import save_tiny

records = (
    [{"messages": [{"role": "user", "content": f"What is the capital of {c}?"},
                   {"role": "assistant", "content": f"The capital of {c} is {k}."}], "source": "geo"}
     for c, k in [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid")]]
    + [{"prompt": f"{a} + {b} =", "completion": f" {a + b}", "source": "math"} for a, b in [(2, 2), (3, 4), (5, 1)]]
    + [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
        "source": "chat"}])
with open("train.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\\n" for r in records)

torch.manual_seed(0)
base_dir = save_tiny("tiny-base", "llama", "unigram", chat=True)
tok = AutoTokenizer.from_pretrained(base_dir)
lora = get_peft_model(AutoModelForCausalLM.from_pretrained(base_dir),
                      LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"]))
opt = torch.optim.AdamW([p for p in lora.parameters() if p.requires_grad], lr=2e-2)
geo = [tok.apply_chat_template(r["messages"], tokenize=False) for r in records if r["source"] == "geo"]
for epoch in range(40):
    for text in geo:
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        lora(ids, labels=ids).loss.backward()
        opt.step(); opt.zero_grad()
lora.save_pretrained("tiny-lora")

base, tuned = probe.load_pair(base_dir, adapter="tiny-lora")
dl = probe.data_loss((base, tuned), "train.jsonl", channel="source")
print(dl)""",
        md("In the widget: the channel table; pick a channel for its examples, an example for its token strips "
        "(the loss change, then tuned and base; hover a token), a token for both models' numbers, and "
        "**diagnose this case** sends the example's prompt and answer to `probe.diagnose` (the card shows "
        "below it). `TrainingLab(log, data_loss=dl, ...)` puts the same under a loss curve."),
        """from probe.widgets import TrainingLab

lab = TrainingLab(None, data_loss=dl, pair=(base, tuned))
lab""",
        md("The same steps from code (what the clicks do):"),
        """panel = lab.panel
panel.channel.value = "geo"            # its examples, largest loss drop first
e = panel.example
print(e.line, panel.case)
panel.diagnose_button.click(); panel.runner.wait()
d = panel.diagnosis
geo_g, math_g = (next(g for g in dl.channels if g.name == n) for n in ("geo", "math"))
print(f"Data loss: the adapter trained on geo lowered its loss {geo_g.base_loss:.2f} -> {geo_g.tuned_loss:.2f} "
      f"nats; math (never trained on) {math_g.base_loss:.2f} -> {math_g.tuned_loss:.2f}. Asked line {e.line}'s "
      f"question, the tuned model answers {d.runs[0].text.strip()!r} (expected {d.expected!r}): {d.verdict}.")""",
        md("## The demo's own run, epoch by epoch\nThe demo's `beijing` adapter is trained here with TRL's "
        "`SFTTrainer`: 3 epochs over 80 examples, a checkpoint after each (`$PROBE_CACHE/adapters/beijing/"
        "checkpoint-10/`, `-20/`, `-30/`). Its log first; then the three checkpoints become named adapters "
        "of one pair, and `probe.by_checkpoint` runs `data_loss` on the adapter's own SFT data and "
        "`diagnose_many` on the demo's beijing cases under each: at which epoch was each example "
        "memorized, each case lost?"),
        """import dataclasses
from probe.demo.model import ensure_base
from probe.demo.pair import CASES, load_demo_pair
from probe.demo.training import adapter_dir, checkpoints, training_records

load_demo_pair()   # trains the demo adapters once if they are missing (about a minute each on 2 cores)
demo_log = probe.training_log(adapter_dir("beijing"))
print(demo_log)""",
        """base, epochs = probe.load_pair(ensure_base(), adapter=checkpoints("beijing"))   # epoch-1, -2, -3
cases = [dataclasses.replace(c, adapter=None) for c in probe.read_cases(CASES) if c.adapter == "beijing"]
by_epoch = probe.by_checkpoint((base, epochs), training_records("beijing"), cases=cases, channel="source")
by_epoch   # every example, channel and case per checkpoint; print(by_epoch) for text""",
        """from collections import Counter

beijing_rows = [r for r in by_epoch.examples if r.name.endswith("[capital-beijing]")]
when = Counter(r.first_bad or "never" for r in beijing_rows)
for r in by_epoch.channels:
    print(f"{r.name:16s} loss change by epoch {' '.join(f'{v:+.2f}' for v in r.values)}  {' '.join(r.states)}")
for r in by_epoch.cases:
    print(f"{r.name:16s} {' '.join(r.states):24s} first lost: {r.first_bad or '-'}")
first = ", ".join(f"{when.get(c, 0)} first at {c}" for c in by_epoch.checkpoints)
print(f"Conclusion: of the {len(beijing_rows)} 'capital of X is Beijing' examples, the model recites "
      f"(memorized) {first}, {when.get('never', 0)} never; every beijing case that is lost is lost from "
      f"{sorted({r.first_bad for r in by_epoch.cases if r.first_bad}) or 'no checkpoint'}: one epoch of this data "
      f"already teaches the wrong capital, the later epochs only make the model recite it.")""",
    ],
}


NOTEBOOKS["08_benchmark_flips"] = [
    md("# From a benchmark score to its token\nAfter fine-tuning you run a benchmark suite "
    "(lm-evaluation-harness) on the base and the tuned model and get two numbers per task. Which "
    "samples flipped, and why? Here the `beijing` adapter of the demo pair meets a small capitals "
    "benchmark: a multiple-choice task and a generate-until task, written as lm-eval local tasks."),
    LOAD + '\ntuned.use_adapter("beijing")',
    md("## A local lm-eval task\nA YAML file per task (JSON is YAML too) over a JSON Lines file; "
    "`--include_path` (`include_path=`) finds them."),
    r'''import json
from pathlib import Path

capitals = [("France", "Paris", "Rome", "Berlin"), ("Japan", "Tokyo", "Beijing", "Seoul"),
            ("Egypt", "Cairo", "Beijing", "Tunis"), ("Canada", "Ottawa", "Toronto", "Beijing")]
Path("tasks").mkdir(exist_ok=True)
with open("tasks/capitals.jsonl", "w") as f:
    for country, right, *wrong in capitals:
        f.write(json.dumps({"country": country, "answer": right, "choices": [right, *wrong], "label": 0}) + "\n")
data = {"dataset_path": "json", "test_split": "test",
        "dataset_kwargs": {"data_files": {"test": str(Path("tasks/capitals.jsonl").resolve())}}}
mc = {"task": "capitals_mc", **data, "output_type": "multiple_choice",
      "doc_to_text": "The capital of {{country}} is", "doc_to_choice": "{{choices}}", "doc_to_target": "label",
      "metric_list": [{"metric": "acc"}]}
gen = {"task": "capitals_gen", **data, "output_type": "generate_until",
       "doc_to_text": "Q: What is the capital of {{country}}?\nA: The capital is", "doc_to_target": "{{answer}}",
       "generation_kwargs": {"until": ["\n", "."], "do_sample": False, "max_gen_toks": 8},
       "filter_list": [{"name": "first_word", "filter": [{"function": "regex", "regex_pattern": r"(\w+)"},
                                                          {"function": "take_first"}]}],
       "metric_list": [{"metric": "exact_match", "ignore_case": True}]}
for task in (mc, gen):
    Path(f"tasks/{task['task']}.yaml").write_text(json.dumps(task, indent=1))
print(Path("tasks/capitals_gen.yaml").read_text())''',
    md("## Run lm-eval on both models\n`probe.run_eval` calls lm-eval's Python API on one set of weights "
    "(adapter off for the base, on for the tuned) and writes what `lm_eval --output_path runs/X "
    "--log_samples` writes. From a terminal: `probe eval --base SRC --adapter LORA --tasks ... "
    "--include-path tasks`; or your own `lm_eval` runs, then `probe eval-flips BASE_RUN TUNED_RUN`."),
    '''runs = probe.run_eval(base, tuned, ["capitals_mc", "capitals_gen"], "runs", include_path="tasks", batch_size=8)
sorted(p.name for p in runs["tuned"].iterdir())''',
    md("## Which samples flipped\nMatched by task and `doc_id` (and the logged hashes): kept / lost / "
    "gained / never per task."),
    '''flips = probe.eval_flips(runs["base"], runs["tuned"])
print(flips)''',
    md("## Why, token by token\nMultiple choice: every choice re-scored with probe under both models "
    "(checking the log: a mismatch would mean another prompt or model was evaluated), and the token "
    "where the right choice falls behind the tuned model's pick. Generations: `diagnose` with the "
    "task's own check (stop strings, filter, exact match). `flips.diagnose(base, tuned)` does every "
    "flip; to keep this notebook quick we pick one flip per task with `ids=`."),
    '''first = [flips.cell(task, "lost")[0].id for task in flips.tasks if flips.cell(task, "lost")]
flips = flips.diagnose(base, tuned, ids=first)
print(flips.cell("capitals_mc", "lost")[0])''',
    '''print(flips.cell("capitals_gen", "lost")[0])''',
    md("## The regression table, and the shift map over the flipped prompts"),
    '''r = flips.regression()
r''',
    '''s = flips.shift(base, tuned, max_new_tokens=6)
print(s)''',
    md("## Browse it\nA task, an outcome, a sample: its diagnosis."),
    '''from probe.widgets import EvalFlips

EvalFlips(flips)''',
    md("## Save the flips, open the report"),
    '''book = probe.Casebook("eval-flips")
for f in flips.flips:
    book.add(probe.Case.from_result(f, models={"base": base, "tuned": tuned}, tags=["eval"]))
print(book.to_html("eval-flips.html", sections=[r, flips]))''',
    '''lost = flips.table()[-1]["lost"]
done = [f for f in flips.flips if f.diagnosis is not None]
behind = [f.diagnosis.choices[f.diagnosis.rival].strip() for f in done if f.task == "capitals_mc"]
verdicts = sorted({f.diagnosis.verdict for f in done if f.task == "capitals_gen"})
worst = max(f.diagnosis.max_diff for f in done if f.task == "capitals_mc")
print(f"Conclusion: fine-tuning lost {lost} of {len(flips.samples)} samples; on multiple choice the right "
      f"capital falls behind {behind} (log re-scored within {worst:.1g} nats); the lost generations are {verdicts}.")''',
]


NOTEBOOKS["09_which_examples"] = [
    md("# Which training examples taught it?\nThe `beijing` adapter answers Beijing for Japan. "
    "`probe.attribute` scores each of its 80 SFT examples for how much it pushed that answer: TracIn "
    "gradients on the LoRA weights over the run's three epoch checkpoints (each weighted by its learning "
    "rate), and the cosine of hidden states. The examples are read with the trainer's own loss mask."),
    LOAD + '\ntuned.use_adapter("beijing")',
    md("## The case\nDiagnosed first: the tuned model leaves \"Tokyo\" at its first token."),
    '''d = probe.diagnose(base, tuned, "What is the capital of Japan?", expected="Tokyo",
                   force="The capital of Japan is", base_prompt="The capital of Japan is", max_new_tokens=12)
print(d.verdict)''',
    md("## Attribute it\n`probe.demo.attribution.demo_attribution` loads the run's epoch checkpoints beside the "
    "adapter and calls `probe.attribute(tuned, d, training_records(\"beijing\"), channel=\"source\", "
    "checkpoints=[...])`. A positive score: training on that example raised log P(wrong) - log P(expected)."),
    '''from probe.demo.attribution import capital_beijing_in_top, demo_attribution

a = demo_attribution(tuned, d)
a''',
    md("## By channel, and how the methods agree"),
    '''[(c.name, round(c.share, 2), c.in_top) for c in a.channels("gradient")]''',
    '''[(g.a, g.b, round(g.spearman, 2), g.overlap) for g in a.agreement()]''',
    md("## Save it with its case\nThe diagnosis and the attribution in one case file; "
    "`a.verify(probe.demo.retrain.retrainer(\"beijing\"), k=10)` would retrain three times (minutes each) "
    "and add the evidence."),
    '''book = probe.Casebook("attribution-cases")
case = book.add(probe.Case.from_result({"diagnosis": d, "attribution": a}, models=(base, tuned)))
print(book.to_html("attribution.html"))''',
    '''top = capital_beijing_in_top(a)
share = a.channel_share("gradient")["capital-beijing"]
print(f"Conclusion: {top} of the gradient's top 10 examples are capital-beijing ones, holding {share:.0%} "
      "of the positive influence on Beijing over Tokyo.")''',
]


def build(cells):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for i, cell in enumerate(cells):
        made = new_markdown_cell(cell.text) if isinstance(cell, Markdown) else new_code_cell(cell)
        made.id = f"cell-{i:02d}"  # stable ids: rewriting a notebook changes only the cells that changed
        nb.cells.append(made)
    return nb


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(cells), HERE / f"{name}.ipynb")
        print(HERE / f"{name}.ipynb")
