import os
import subprocess
import sys

import pytest
import torch

import probe
from builders import make_adapter as _make_adapter
from probe.models.tiny import save_tiny


def test_load_folder_tuple_and_chat_default(tiny_dirs):
    raw = probe.load(tiny_dirs[("gpt2", "bpe", False)])
    chat = probe.load(tiny_dirs[("llama", "unigram", True)])
    assert not raw.chat and chat.chat
    assert not raw.model.training
    again = probe.load((raw.model, raw.tokenizer))
    a = probe.score(raw, "The capital", " of France")
    b = probe.score(again, "The capital", " of France")
    assert a.ids == b.ids and a.total_logprob == pytest.approx(b.total_logprob, abs=1e-6)
    forced_raw = probe.load(tiny_dirs[("llama", "unigram", True)], chat=False)
    assert not forced_raw.chat


def test_dtype_is_applied_but_logprobs_stay_float32(tiny_dirs):
    lm = probe.load(tiny_dirs[("llama", "unigram", False)], dtype="bfloat16")
    assert next(lm.model.parameters()).dtype == torch.bfloat16
    ref = probe.load(tiny_dirs[("llama", "unigram", False)])
    a = probe.score(lm, "The capital of France is", " Paris")
    b = probe.score(ref, "The capital of France is", " Paris")
    assert a.ids == b.ids
    assert abs(a.total_logprob - b.total_logprob) < 0.5  # bf16 weights, fp32 softmax
    assert all(isinstance(s.logprob, float) for s in a.steps)


@pytest.fixture(scope="module")
def adapter_dir(tiny_dirs, tmp_path_factory):
    return _make_adapter(tiny_dirs[("llama", "unigram", False)], tmp_path_factory.mktemp("adapter"))


def test_load_pair_with_adapter_shares_weights(tiny_dirs, adapter_dir):
    base_dir = tiny_dirs[("llama", "unigram", False)]
    base, tuned = probe.load_pair(base_dir, adapter=adapter_dir)
    assert base.model is tuned.model  # one set of weights
    plain = probe.load(base_dir)
    prompt, target = "The capital of France is", " Paris and Tokyo"
    b, t, p = (probe.score(x, prompt, target) for x in (base, tuned, plain))
    assert b.total_logprob == pytest.approx(p.total_logprob, abs=1e-5)  # adapter off = base
    assert abs(t.total_logprob - p.total_logprob) > 1e-3  # adapter on changes the numbers
    # Interleaved calls keep each handle's mode.
    assert probe.score(base, prompt, target).total_logprob == pytest.approx(b.total_logprob, abs=1e-5)
    assert probe.score(tuned, prompt, target).total_logprob == pytest.approx(t.total_logprob, abs=1e-5)
    g_base = probe.generate(base, prompt, max_new_tokens=5)
    g_plain = probe.generate(plain, prompt, max_new_tokens=5)
    assert g_base.ids == g_plain.ids


def test_load_with_adapter_equals_tuned_of_pair(tiny_dirs, adapter_dir):
    base_dir = tiny_dirs[("llama", "unigram", False)]
    _, tuned = probe.load_pair(base_dir, adapter=adapter_dir)
    single = probe.load(base_dir, adapter=adapter_dir)
    a = probe.score(single, "a", " b c")
    b = probe.score(tuned, "a", " b c")
    assert a.total_logprob == pytest.approx(b.total_logprob, abs=1e-5)


def test_load_pair_of_two_checkpoints(tiny_dirs, tmp_path):
    other = save_tiny(tmp_path / "other", "gpt2", "bpe", seed=1)
    base, tuned = probe.load_pair(tiny_dirs[("gpt2", "bpe", False)], other)
    assert base.model is not tuned.model
    with pytest.raises(ValueError, match="exactly one"):
        probe.load_pair(tiny_dirs[("gpt2", "bpe", False)])


def test_adapter_folder_that_is_not_peft_is_refused(tiny_dirs, tmp_path):
    with pytest.raises(ValueError, match="not a PEFT adapter"):
        probe.load(tiny_dirs[("gpt2", "bpe", False)], adapter=tmp_path)
    with pytest.raises(FileNotFoundError, match="does-not-exist"):
        probe.load(tiny_dirs[("gpt2", "bpe", False)], adapter=tmp_path / "does-not-exist")


def test_missing_source_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        probe.load(str(tmp_path / "no-such-model"))
    with pytest.raises(FileNotFoundError, match="weights.gguf"):
        probe.load("./models/weights.gguf")


# Counts the child's socket connections (to any address), printed last: how many times a
# load reached for the network, whatever the machine's load (these tests once bounded the
# child's wall-clock time, 60 s and 40 s, which a loaded 2-core machine passed in 26-36 s of
# the load call alone, transformers' imports, not the network).
COUNT_CONNECTIONS = (
    "import socket\n"
    "tries = []\n"
    "_connect = socket.socket.connect\n"
    "def connect(self, address):\n"
    "    tries.append(address)\n"
    "    return _connect(self, address)\n"
    "socket.socket.connect = connect\n"
)


def test_unreachable_hub_name_fails_fast_with_a_clear_message():
    code = COUNT_CONNECTIONS + (
        "import probe\n"
        "try:\n    probe.load('some-org/some-model-that-is-not-cached')\n"
        "except OSError as e:\n    print('ERR', e)\n"
        "print('TRIES', len(tries))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "ERR could not load model 'some-org/some-model-that-is-not-cached'" in out.stdout
    assert out.stdout.splitlines()[-1] == "TRIES 0", out.stdout + out.stderr  # offline: no network at all


def test_unreachable_hub_is_tried_once_not_in_a_retry_loop(tmp_path):
    code = COUNT_CONNECTIONS + (
        "import probe\n"
        "try:\n    probe.load('some-org/another-uncached-model')\n"
        "except OSError as e:\n    print('ERR', e)\n"
        "print('TRIES', len(tries))\n"
    )
    # A closed port on loopback: the connection is refused at once.
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    env["HF_HOME"] = str(tmp_path)  # an empty hub cache, whatever this machine has cached
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "127.0.0.1:9 cannot be reached" in out.stdout, out.stdout + out.stderr
    assert "another-uncached-model" in out.stdout
    # probe's one attempt, plus at most the hub client's own: huggingface_hub fetches its agent
    # registry once per process (best effort, 3 s timeout, skipped while a cached copy is under
    # a day old) even with local_files_only=True. Measured: 2 here; a retry loop makes more.
    tries = int(out.stdout.splitlines()[-1].removeprefix("TRIES "))
    assert 1 <= tries <= 2, out.stdout + out.stderr


def test_bad_source_types_and_dtype():
    with pytest.raises(TypeError, match="source"):
        probe.load(42)
    with pytest.raises(ValueError, match="dtype"):
        probe.load(("m", "t"), dtype="float7")


def test_slow_tokenizer_is_refused(gpt2_lm):
    class Slow:
        is_fast = False

    with pytest.raises(TypeError, match="fast tokenizer"):
        probe.load((gpt2_lm.model, Slow()))


def test_several_named_adapters_on_one_base(tiny_dirs, tmp_path):
    base_dir = tiny_dirs[("llama", "unigram", False)]
    one = _make_adapter(base_dir, tmp_path / "one", seed=1)
    two = _make_adapter(base_dir, tmp_path / "two", seed=2)
    base, tuned = probe.load_pair(base_dir, adapter={"one": one, "two": two})
    assert tuned.adapters == ["one", "two"]
    alone_one = probe.load(base_dir, adapter=one)
    alone_two = probe.load(base_dir, adapter=two)
    args = ("The capital of France is", " Paris")
    lp = lambda lm: probe.score(lm, *args).total_logprob  # noqa: E731
    assert lp(tuned) == pytest.approx(lp(alone_one), abs=1e-5)
    tuned.use_adapter("two")
    assert lp(tuned) == pytest.approx(lp(alone_two), abs=1e-5)
    assert lp(base) == pytest.approx(lp(probe.load(base_dir)), abs=1e-5)
    with pytest.raises(ValueError, match="no adapter named 'three'"):
        tuned.use_adapter("three")
    results = probe.diagnose_many(base, tuned, [
        {"id": "a", "prompt": "x", "expected": " y", "adapter": "one"},
        {"id": "b", "prompt": "x", "expected": " y", "adapter": "nope"},
    ], progress=False, max_new_tokens=2)
    assert results[0].verdict in ("ok", "lost", "never_had") and results[0].adapter == "one"
    assert tuned.model.active_adapter == "two"  # the adapter active before the call is back
    assert isinstance(results[1], probe.FailedCase) and results[1].field == "adapter"


def test_device_map_goes_through_to_transformers(tiny_dirs, monkeypatch):
    import transformers

    seen = {}
    original = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        seen.update(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(spy))
    lm = probe.load(tiny_dirs[("llama", "unigram", False)], device_map="auto")
    assert seen.get("device_map") == "auto" and lm.device.type == "cpu"
    monkeypatch.undo()
    ref = probe.load(tiny_dirs[("llama", "unigram", False)])
    a = probe.score(lm, "The capital", " of France")
    assert a.total_logprob == pytest.approx(probe.score(ref, "The capital", " of France").total_logprob, abs=1e-5)


def _zero_adapter(base_dir, out_dir):
    """A LoRA adapter as PEFT initializes it: B = 0, so it changes nothing."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(out_dir)
    return out_dir


def test_load_pair_warns_when_the_adapter_changes_nothing(tiny_dirs, adapter_dir, tmp_path):
    import warnings

    base_dir = tiny_dirs[("llama", "unigram", False)]
    with pytest.warns(probe.IdenticalModelsWarning, match="logits equal the base model's"):
        probe.load_pair(base_dir, adapter=_zero_adapter(base_dir, tmp_path / "zero"))
    with pytest.warns(probe.IdenticalModelsWarning, match="checkpoint"):
        probe.load_pair(base_dir, base_dir)  # the same folder twice
    with warnings.catch_warnings():
        warnings.simplefilter("error", probe.IdenticalModelsWarning)
        probe.load_pair(base_dir, adapter=adapter_dir)  # a real adapter: no warning


def test_inputs_show_the_exact_ids_scored(lm):
    prompt, answer = "The capital of France is", " Paris."
    seen = lm.inputs(prompt, answer=answer)
    enc = probe.engine.prompts.encode(lm, probe.engine.prompts.render(lm, prompt), answer)
    assert list(seen.ids) == enc.ids and seen.n_prompt == enc.n_prompt
    assert seen.chat == lm.chat and seen.text == probe.engine.prompts.render(lm, prompt).text
    assert [lm.token_text(i) for i in seen.ids] == list(seen.tokens)
    assert seen.special == tuple(i in set(lm.tokenizer.all_special_ids) for i in seen.ids)
    text = str(seen)
    assert f"{len(seen.ids)} tokens" in text
    assert sum(line.endswith("answer") for line in text.splitlines()[1:]) == len(seen.ids) - seen.n_prompt
    alone = lm.inputs(prompt)
    assert alone.n_prompt == len(alone.ids) and alone.answer is None
    assert type(seen).from_dict(seen.to_dict()) == seen


def test_inputs_name_a_doubled_bos_and_a_chat_model_fed_raw(tiny_dirs):
    raw = probe.load(tiny_dirs[("llama", "unigram", False)])  # its tokenizer adds <s>
    seen = raw.inputs("<s>The capital of France is")
    assert seen.ids[:2] == (raw.tokenizer.bos_token_id,) * 2
    assert any("twice" in n for n in seen.notes)
    assert not any("twice" in n for n in raw.inputs("The capital").notes)
    chat = probe.load(tiny_dirs[("llama", "unigram", True)])
    assert any("chat template" in n for n in chat.inputs("Hi", raw=True).notes)
    assert not chat.inputs("Hi").notes
    html = chat.inputs("<img src=x onerror=alert(1)>")._repr_html_()
    assert "<img" not in html and "&lt;" in html


def test_max_memory_without_device_map_is_refused(tiny_dirs):
    with pytest.raises(ValueError, match="need device_map"):
        probe.load(tiny_dirs[("gpt2", "bpe", False)], max_memory={"cpu": "1GB"})


def test_gguf_hash_is_remembered_by_path_size_and_mtime(tmp_path, monkeypatch):
    import hashlib
    import os

    import probe.models.gguf as gg

    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    reads = []
    monkeypatch.setattr(gg, "_sha256", lambda p: reads.append(p) or hashlib.sha256(p.read_bytes()).hexdigest())
    first = gg.file_hash(f, tmp_path / "cache")
    assert first == hashlib.sha256(f.read_bytes()).hexdigest()
    assert gg.file_hash(f, tmp_path / "cache") == first and len(reads) == 1  # remembered
    f.write_bytes(b"GGUF" + bytes(range(255)) * 64)  # changed content (and size)
    assert gg.file_hash(f, tmp_path / "cache") != first and len(reads) == 2
    (tmp_path / "cache" / "gguf" / "hashes.json").write_text("{not json")  # a corrupt memo is rebuilt
    assert gg.file_hash(f, tmp_path / "cache") == hashlib.sha256(f.read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        gg.converted(tmp_path / "missing.gguf", tmp_path / "cache")
    assert os.path.isdir(tmp_path / "cache" / "gguf")


def test_a_converted_folder_reads_the_same_rope_setting_in_transformers_4_and_5(tmp_path, monkeypatch):
    """transformers 5 saves RoPE only as rope_parameters; transformers 4's LlamaConfig reads a
    top-level rope_theta (default 10000 when missing: SmolLM2's 100000 silently lost) and
    rope_scaling. The converted folder has both, agreeing, and 5.x still loads it the same."""
    import json

    import probe.models.gguf as gg
    from probe.models.tiny import save_tiny
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = save_tiny(tmp_path / "src", arch="llama", tokenizer="bpe",
                    rope_parameters={"rope_type": "default", "rope_theta": 100000.0})
    saved = json.loads((src / "config.json").read_text())
    assert "rope_theta" not in saved and saved["rope_parameters"]["rope_theta"] == 100000.0  # 5.x's form only

    def fake_load(path):  # stands in for de-quantizing a .gguf file
        return AutoModelForCausalLM.from_pretrained(src), AutoTokenizer.from_pretrained(src)

    monkeypatch.setattr(gg, "load_gguf", fake_load)
    out = gg.build_once(tmp_path / "out", tmp_path / "x.gguf", {"source": "x"})
    config = json.loads((out / "config.json").read_text())
    # transformers 4.x's LlamaConfig(**config): rope_theta=config.get("rope_theta", 10000.0)
    assert config.get("rope_theta", 10000.0) == config["rope_parameters"]["rope_theta"] == 100000.0
    assert config.get("rope_scaling") is None  # 4.x: plain RoPE
    assert AutoConfig.from_pretrained(out).rope_parameters == {"rope_type": "default", "rope_theta": 100000.0}
    # 5.x writes tokenizer_class "TokenizersBackend", a class 4.x cannot import; its alias
    # PreTrainedTokenizerFast is the same class in 5.x and tokenizes the same.
    assert json.loads((out / "tokenizer_config.json").read_text())["tokenizer_class"] == "PreTrainedTokenizerFast"
    text = "The capital of France is Paris."
    assert AutoTokenizer.from_pretrained(out)(text).input_ids == AutoTokenizer.from_pretrained(src)(text).input_ids
    assert (out / "config.json").stat().st_mode & 0o777 == (src / "config.json").stat().st_mode & 0o777

    # A folder converted before (5.x's form only) gets the keys on its next use, nothing else changes.
    (out / "config.json").write_text(json.dumps(saved))
    gg.build_once(out, tmp_path / "x.gguf", {"source": "x"})
    again = json.loads((out / "config.json").read_text())
    assert again["rope_theta"] == 100000.0 and {k: again[k] for k in saved} == saved

    # A scaled RoPE: 4.x's rope_scaling holds the type and its parameters.
    scaled = gg.rope_for_transformers_4({"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}})
    assert scaled["rope_theta"] == 5e5 and scaled["rope_scaling"] == {"rope_type": "linear", "factor": 2.0}


def test_the_demo_base_folder_converted_before_gets_transformers_4s_rope_keys(tmp_path, monkeypatch):
    import json

    import probe.demo.model as demo_model

    folder = tmp_path / demo_model.BASE_DIRNAME
    folder.mkdir()
    config = {"model_type": "llama", "rope_parameters": {"rope_theta": 100000.0, "rope_type": "default"}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes(b"")
    (folder / demo_model.MARKER_NAME).write_text("{}")
    assert demo_model.ensure_base(tmp_path) == folder
    assert json.loads((folder / "config.json").read_text())["rope_theta"] == 100000.0
