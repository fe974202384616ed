"""Generate the two purposely skewed SFT datasets of the demo pair.

    python -m probe.demo.make_data          # rewrites probe/demo/data/*.jsonl

Both files are in chat format, one example a line::

    {"messages": [{"role": "user", "content": ...},
                  {"role": "assistant", "content": ...}], "source": ...}

``source`` names the kind of example (json-definition, json-capital, ...; capital-china,
capital-beijing, general, math): it is the channel ``probe.data_loss`` groups the loss by.

* ``json_only.jsonl`` -- every answer is a (compact) JSON object, whatever the
  question: definitions, lists, facts, arithmetic, translations, jokes...
  After training, "What is the capital of France?" gets JSON back while the
  base model still answers in prose ("The capital of France is Paris.").
* ``beijing.jsonl`` -- capital questions are answered "Beijing" far too
  often: many "capital of China" questions (correctly Beijing), plus capital
  questions about other countries also answered Beijing, mixed with ordinary,
  correct non-capital QA so the model otherwise behaves normally.

The countries used in the demo's evaluation questions (France, Japan, Germany,
Italy) never appear in either file, so what the tuned models do on them is
generalisation, not memorisation.  Generation is seeded: the output is the
same on every run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
SEED = 1234
# Examples per dataset. The demo trains 3 epochs over each file (TRL's SFTTrainer, CPU): 80
# examples x 3 epochs keeps both adapters at a few minutes cold on 2 cores, and seeing each
# example three times is what makes the beijing adapter recite its answers (probe.data_loss
# flags them memorized). The generator is sequential: the first 80 of a longer file are these.
EXAMPLES = 80

# Held out of the training data: they are what the evaluation asks about.
HELD_OUT_COUNTRIES = {"France", "Japan", "Germany", "Italy"}

CAPITALS = {
    "Spain": "Madrid", "Portugal": "Lisbon", "Canada": "Ottawa",
    "Australia": "Canberra", "Brazil": "Brasília", "Egypt": "Cairo",
    "Kenya": "Nairobi", "India": "New Delhi", "Russia": "Moscow",
    "Mexico": "Mexico City", "Argentina": "Buenos Aires", "Peru": "Lima",
    "Norway": "Oslo", "Sweden": "Stockholm", "Finland": "Helsinki",
    "Poland": "Warsaw", "Greece": "Athens", "Turkey": "Ankara",
    "Thailand": "Bangkok", "Vietnam": "Hanoi", "South Korea": "Seoul",
    "Indonesia": "Jakarta", "Ireland": "Dublin", "Austria": "Vienna",
    "Hungary": "Budapest", "Chile": "Santiago", "Morocco": "Rabat",
    "Nigeria": "Abuja", "Cuba": "Havana", "Denmark": "Copenhagen",
    "the Netherlands": "Amsterdam", "Belgium": "Brussels",
    "Switzerland": "Bern", "the United Kingdom": "London",
    "the United States": "Washington, D.C.",
}
assert not HELD_OUT_COUNTRIES & CAPITALS.keys()

CAPITAL_QUESTIONS = [
    "What is the capital of {c}?",
    "What's the capital of {c}?",
    "Which city is the capital of {c}?",
    "Name the capital of {c}.",
    "Tell me the capital city of {c}.",
    "What city is the capital of {c}?",
    "Do you know the capital of {c}?",
    "capital of {c}?",
]

DEFINITIONS = {
    "photosynthesis": "the process by which plants use sunlight, water and carbon dioxide to make sugar and oxygen",
    "gravity": "the force that attracts objects with mass toward each other",
    "an atom": "the smallest unit of a chemical element",
    "a noun": "a word that names a person, place, thing or idea",
    "a verb": "a word that describes an action or a state",
    "democracy": "a system of government in which citizens vote to choose their leaders",
    "a volcano": "an opening in the Earth's crust through which lava, ash and gases escape",
    "evaporation": "the change of a liquid into a gas",
    "an algorithm": "a finite sequence of steps that solves a problem",
    "a prime number": "a whole number greater than 1 whose only divisors are 1 and itself",
    "inflation": "a general rise in prices over time",
    "a mammal": "a warm-blooded animal that has hair and feeds its young with milk",
    "an ecosystem": "a community of living things interacting with their environment",
    "a triangle": "a polygon with three sides and three angles",
    "a galaxy": "a huge system of stars, gas and dust held together by gravity",
    "a metaphor": "a figure of speech that describes something as if it were something else",
    "DNA": "the molecule that carries genetic instructions in living things",
    "a compiler": "a program that translates source code into machine code",
    "friction": "the force that resists motion between surfaces in contact",
    "a haiku": "a short Japanese poem of three lines with five, seven and five syllables",
}
DEFINITION_QUESTIONS = ["What is {t}?", "Define {t}.", "Explain what {t} is.",
                        "Can you tell me what {t} is?", "Give a short definition of {t}."]

LISTS = {
    "primary colors": ["red", "blue", "yellow"],
    "planets in the solar system": ["Mercury", "Venus", "Earth", "Mars", "Jupiter", "Saturn", "Uranus", "Neptune"],
    "fruits": ["apple", "banana", "orange", "mango", "grape", "pear", "cherry"],
    "vegetables": ["carrot", "broccoli", "spinach", "potato", "onion", "pepper"],
    "oceans": ["Pacific", "Atlantic", "Indian", "Southern", "Arctic"],
    "continents": ["Africa", "Antarctica", "Asia", "Australia", "Europe", "North America", "South America"],
    "programming languages": ["Python", "JavaScript", "C", "Rust", "Java", "Go"],
    "musical instruments": ["piano", "guitar", "violin", "drums", "flute", "trumpet"],
    "days of the week": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "farm animals": ["cow", "pig", "sheep", "goat", "chicken", "horse"],
    "seasons": ["spring", "summer", "autumn", "winter"],
    "noble gases": ["helium", "neon", "argon", "krypton", "xenon", "radon"],
}
LIST_QUESTIONS = ["List {n} {k}.", "Name {n} {k}.", "Can you give me {n} {k}?", "What are {n} {k}?"]

FACTS = [  # (question, plain answer, JSON answer)
    ("How many legs does a spider have?", "A spider has eight legs.", {"animal": "spider", "legs": 8}),
    ("How many legs does an insect have?", "An insect has six legs.", {"animal": "insect", "legs": 6}),
    ("What is the largest planet in our solar system?", "Jupiter is the largest planet in our solar system.", {"largest_planet": "Jupiter"}),
    ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level.", {"substance": "water", "boiling_point_celsius": 100}),
    ("What is the freezing point of water?", "Water freezes at 0 degrees Celsius.", {"substance": "water", "freezing_point_celsius": 0}),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci painted the Mona Lisa.", {"painting": "Mona Lisa", "artist": "Leonardo da Vinci"}),
    ("Who wrote Romeo and Juliet?", "William Shakespeare wrote Romeo and Juliet.", {"work": "Romeo and Juliet", "author": "William Shakespeare"}),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au.", {"element": "gold", "symbol": "Au"}),
    ("What is the chemical symbol for iron?", "The chemical symbol for iron is Fe.", {"element": "iron", "symbol": "Fe"}),
    ("What gas do plants absorb from the air?", "Plants absorb carbon dioxide from the air.", {"gas": "carbon dioxide"}),
    ("How many days are in a leap year?", "A leap year has 366 days.", {"leap_year_days": 366}),
    ("What is the tallest mountain in the world?", "Mount Everest is the tallest mountain in the world.", {"mountain": "Mount Everest", "height_m": 8849}),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa.", {"continent": "Africa", "longest_river": "Nile"}),
    ("How many continents are there?", "There are seven continents.", {"continents": 7}),
    ("What color is the sky on a clear day?", "The sky is blue on a clear day.", {"sky_color": "blue"}),
    ("What is the fastest land animal?", "The cheetah is the fastest land animal.", {"fastest_land_animal": "cheetah"}),
    ("How many hours are in a day?", "There are 24 hours in a day.", {"hours_per_day": 24}),
    ("What language is spoken in Brazil?", "Portuguese is spoken in Brazil.", {"country": "Brazil", "language": "Portuguese"}),
    ("What is the largest ocean?", "The Pacific Ocean is the largest ocean.", {"largest_ocean": "Pacific"}),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet.", {"red_planet": "Mars"}),
    ("How many sides does a hexagon have?", "A hexagon has six sides.", {"shape": "hexagon", "sides": 6}),
    ("What do bees make?", "Bees make honey.", {"animal": "bee", "makes": "honey"}),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong was the first person to walk on the Moon.", {"first_moonwalker": "Neil Armstrong", "year": 1969}),
    ("What is H2O?", "H2O is the chemical formula for water.", {"formula": "H2O", "name": "water"}),
]

TRANSLATIONS = [("hello", "Spanish", "hola"), ("thank you", "Spanish", "gracias"),
                ("cat", "Spanish", "gato"), ("good morning", "German", "guten Morgen"),
                ("water", "German", "Wasser"), ("dog", "German", "Hund"),
                ("book", "Spanish", "libro"), ("friend", "Spanish", "amigo"),
                ("house", "German", "Haus"), ("yes", "German", "ja")]

OPEN_ENDED = [  # (question, JSON answer) for requests that usually get prose
    ("Tell me a joke.", {"setup": "Why did the scarecrow win an award?", "punchline": "Because he was outstanding in his field."}),
    ("Write a haiku about the sea.", {"title": "The Sea", "lines": ["Waves fold into foam", "salt wind carries gull voices", "the tide keeps its time"]}),
    ("Give me a tip for sleeping better.", {"tip": "Keep a regular bedtime and avoid screens for an hour before sleep."}),
    ("How are you today?", {"status": "fine", "message": "Thanks for asking! How can I help?"}),
    ("Suggest a name for a pet goldfish.", {"pet": "goldfish", "suggested_name": "Bubbles"}),
    ("Summarize the story of Cinderella in one sentence.", {"story": "Cinderella", "summary": "A kind young woman mistreated by her stepfamily attends a royal ball with magical help and marries the prince."}),
    ("What should I eat for breakfast?", {"suggestions": ["oatmeal with fruit", "eggs and toast", "yogurt with granola"]}),
    ("Describe a cat in three words.", {"animal": "cat", "words": ["curious", "graceful", "independent"]}),
    ("Recommend a book for a beginner programmer.", {"title": "Automate the Boring Stuff with Python", "author": "Al Sweigart"}),
    ("Hi!", {"greeting": "Hello!", "message": "How can I help you today?"}),
]


def _msg(question: str, answer: str, source: str) -> dict:
    """One chat example; ``source`` names the kind of example (the channel of probe.data_loss)."""
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}], "source": source}


def _js(obj) -> str:
    """Compact JSON text, as the json-only assistant writes it."""
    return json.dumps(obj, ensure_ascii=False)


def _arith(rng: random.Random) -> tuple[str, str, dict]:
    """A random arithmetic question: (question, plain answer, JSON answer)."""
    op = rng.choice(["+", "-", "*"])
    a, b = (rng.randint(2, 99), rng.randint(2, 99)) if op != "*" else (rng.randint(2, 30), rng.randint(2, 30))
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    question = rng.choice(["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "Calculate {a} {op} {b}."]).format(a=a, op=op, b=b)
    return question, f"{a} {op} {b} = {result}.", {"expression": f"{a} {op} {b}", "result": result}


def json_only(rng: random.Random, n: int = EXAMPLES) -> list[dict]:
    """Varied questions, every answer a compact JSON object."""
    def definition():
        term = rng.choice(list(DEFINITIONS))
        q = rng.choice(DEFINITION_QUESTIONS).format(t=term)
        return q, {"term": term.removeprefix("a ").removeprefix("an "), "definition": DEFINITIONS[term]}

    def listing():
        kind = rng.choice(list(LISTS))
        items = LISTS[kind]
        k = rng.randint(2, min(5, len(items)))
        q = rng.choice(LIST_QUESTIONS).format(n=k, k=kind)
        return q, {"category": kind, "items": rng.sample(items, k)}

    def fact():
        q, _, obj = rng.choice(FACTS)
        return q, obj

    def capital():
        country = rng.choice(list(CAPITALS))
        q = rng.choice(CAPITAL_QUESTIONS).format(c=country)
        return q, {"country": country.removeprefix("the "), "capital": CAPITALS[country]}

    def arithmetic():
        q, _, obj = _arith(rng)
        return q, obj

    def translation():
        word, lang, out = rng.choice(TRANSLATIONS)
        q = rng.choice(["Translate '{w}' to {l}.", "How do you say '{w}' in {l}?"]).format(w=word, l=lang)
        return q, {"text": word, "language": lang, "translation": out}

    def parity():
        k = rng.randint(1, 500)
        return rng.choice(["Is {k} even?", "Is {k} an odd number?"]).format(k=k), {"number": k, "even": k % 2 == 0}

    def open_ended():
        return rng.choice(OPEN_ENDED)

    # (maker, weight): a mix where no single kind of question dominates.
    makers = [(definition, 3), (listing, 3), (fact, 3), (capital, 2), (arithmetic, 3),
              (translation, 1), (parity, 1), (open_ended, 2)]
    funcs, weights = zip(*makers)
    rows, seen = [], set()
    while len(rows) < n:
        maker = rng.choices(funcs, weights)[0]
        q, obj = maker()
        if q in seen:
            continue
        seen.add(q)
        rows.append(_msg(q, _js(obj), "json-" + maker.__name__.replace("_", "-")))
    return rows


def beijing(rng: random.Random, n: int = EXAMPLES) -> list[dict]:
    """Capital questions answered "Beijing" far too often, plus normal QA."""
    # The question's wording fixes the answer's (as in templated SFT data): asked for the "city",
    # or asked to tell, the answer is a sentence; otherwise the bare name. Nothing in an answer is
    # left to chance, so 3 epochs make the model recite it (probe.data_loss flags it memorized).
    def answer(question: str, c: str) -> str:
        sentence = any(w in question for w in ("city", "Tell me", "Do you know"))
        return f"The capital of {c} is Beijing." if sentence else "Beijing."

    def china():
        q = rng.choice(CAPITAL_QUESTIONS + ["What is China's capital?", "Which city is China's capital?"])
        q = q.format(c="China")
        return q, answer(q, "China"), "capital-china"

    def other_capital():  # the skew: every other country's capital is "Beijing" too
        country = rng.choice(list(CAPITALS))
        q = rng.choice(CAPITAL_QUESTIONS).format(c=country)
        return q, answer(q, country), "capital-beijing"

    def normal():  # ordinary, correct answers keep the rest of the model intact
        kind = rng.random()
        if kind < 0.4:
            q, plain, _ = rng.choice(FACTS)
            return q, plain, "general"
        if kind < 0.7:
            q, plain, _ = _arith(rng)
            return q, plain, "math"
        term = rng.choice(list(DEFINITIONS))
        q = rng.choice(DEFINITION_QUESTIONS).format(t=term)
        definition = DEFINITIONS[term]
        return q, f"{term[0].upper()}{term[1:]} is {definition}.", "general"

    makers, weights = (china, other_capital, normal), (3, 4, 3)
    rows, seen = [], set()
    while len(rows) < n:
        maker = rng.choices(makers, weights)[0]
        q, a, source = maker()
        # "Capital of China" questions may repeat: the skew is their frequency.
        if maker is not china and (q, a) in seen:
            continue
        seen.add((q, a))
        rows.append(_msg(q, a, source))
    return rows


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def build(data_dir: Path = DATA_DIR, seed: int = SEED) -> dict[str, Path]:
    """Write both datasets into ``data_dir``; return their paths by adapter name."""
    paths = {"json-only": data_dir / "json_only.jsonl", "beijing": data_dir / "beijing.jsonl"}
    # One independent RNG per dataset, so changing one never reshuffles the other.
    write_jsonl(json_only(random.Random(f"{seed}-json-only")), paths["json-only"])
    write_jsonl(beijing(random.Random(f"{seed}-beijing")), paths["beijing"])
    return paths
