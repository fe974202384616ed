"""The facts of the basics pack, as reviewable tables (``make_basics`` turns them into cases).

Every entry is (prompt, expected answer, accepted answers). The accepted answers are what a
person means by "the answer is X": matched ignoring case, as whole words, any one of them
(spelling variants: "Kyiv" / "Kiev"). Arithmetic and unit conversions are computed, not typed.
Facts that are contested or changing (Bolivia's capital, Kazakhstan's name of the year, the
longest river) are left out on purpose: a wrong or arguable fact here is a wrong verdict.
"""

from __future__ import annotations

# country -> (capital, other accepted spellings)
CAPITALS = {
    "France": ("Paris",), "Germany": ("Berlin",), "Italy": ("Rome",), "Spain": ("Madrid",),
    "Portugal": ("Lisbon",), "the United Kingdom": ("London",), "Ireland": ("Dublin",),
    "Belgium": ("Brussels",), "Austria": ("Vienna",), "Poland": ("Warsaw",),
    "the Czech Republic": ("Prague",), "Hungary": ("Budapest",), "Greece": ("Athens",),
    "Turkey": ("Ankara",), "Russia": ("Moscow",), "Ukraine": ("Kyiv", "Kiev"),
    "Romania": ("Bucharest",), "Bulgaria": ("Sofia",), "Serbia": ("Belgrade",),
    "Croatia": ("Zagreb",), "Norway": ("Oslo",), "Sweden": ("Stockholm",),
    "Finland": ("Helsinki",), "Denmark": ("Copenhagen",), "Iceland": ("Reykjavík", "Reykjavik"),
    "Estonia": ("Tallinn",), "Latvia": ("Riga",), "Lithuania": ("Vilnius",),
    "Slovakia": ("Bratislava",), "Slovenia": ("Ljubljana",), "Japan": ("Tokyo",),
    "China": ("Beijing",), "South Korea": ("Seoul",), "North Korea": ("Pyongyang",),
    "India": ("New Delhi",), "Pakistan": ("Islamabad",), "Bangladesh": ("Dhaka",),
    "Nepal": ("Kathmandu",), "Thailand": ("Bangkok",), "Vietnam": ("Hanoi",),
    "the Philippines": ("Manila",), "Malaysia": ("Kuala Lumpur",), "Afghanistan": ("Kabul",),
    "Iran": ("Tehran",), "Iraq": ("Baghdad",), "Saudi Arabia": ("Riyadh",), "Syria": ("Damascus",),
    "Jordan": ("Amman",), "Lebanon": ("Beirut",), "Qatar": ("Doha",),
    "the United Arab Emirates": ("Abu Dhabi",), "Egypt": ("Cairo",), "Kenya": ("Nairobi",),
    "Nigeria": ("Abuja",), "Ethiopia": ("Addis Ababa",), "Morocco": ("Rabat",), "Ghana": ("Accra",),
    "Algeria": ("Algiers",), "Tunisia": ("Tunis",), "Senegal": ("Dakar",), "Uganda": ("Kampala",),
    "Zimbabwe": ("Harare",), "the United States": ("Washington, D.C.", "Washington"),
    "Canada": ("Ottawa",), "Mexico": ("Mexico City",), "Cuba": ("Havana",), "Jamaica": ("Kingston",),
    "Brazil": ("Brasília", "Brasilia"), "Argentina": ("Buenos Aires",), "Chile": ("Santiago",),
    "Peru": ("Lima",), "Colombia": ("Bogotá", "Bogota"), "Venezuela": ("Caracas",),
    "Uruguay": ("Montevideo",), "Ecuador": ("Quito",), "Paraguay": ("Asunción", "Asuncion"),
    "Australia": ("Canberra",), "New Zealand": ("Wellington",),
    "Mongolia": ("Ulaanbaatar", "Ulan Bator"),
}

USA = ("the United States", "United States", "USA", "U.S.", "America")
UK = ("England", "the United Kingdom", "United Kingdom", "UK", "Britain")

# city -> country (other accepted names)
CITIES = {
    "Kyoto": ("Japan",), "Osaka": ("Japan",), "Toronto": ("Canada",), "Vancouver": ("Canada",),
    "Munich": ("Germany",), "Hamburg": ("Germany",), "Barcelona": ("Spain",), "Milan": ("Italy",),
    "Venice": ("Italy",), "Marseille": ("France",), "Lyon": ("France",), "Mumbai": ("India",),
    "Shanghai": ("China",), "Istanbul": ("Turkey", "Türkiye"), "Sydney": ("Australia",),
    "Melbourne": ("Australia",), "Rio de Janeiro": ("Brazil",), "Chicago": USA,
    "Manchester": UK, "Casablanca": ("Morocco",),
}

# (prompt, expected, accepted...) -- geography beyond capitals
LANDMARKS = [
    ("In which city is the Eiffel Tower?", "Paris"),
    ("In which city is the Colosseum?", "Rome"),
    ("In which city is the Statue of Liberty?", "New York", "New York City"),
    ("In which city is Big Ben?", "London"),
    ("In which country is the Taj Mahal?", "India"),
    ("In which country is Machu Picchu?", "Peru"),
    ("In which country are the Pyramids of Giza?", "Egypt"),
    ("In which country is the Sydney Opera House?", "Australia"),
    ("In which country is Mount Fuji?", "Japan"),
    ("In which country is the Acropolis of Athens?", "Greece"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean", "Pacific"),
    ("What is the highest mountain on Earth above sea level?", "Mount Everest", "Everest"),
    ("What is the largest continent by area?", "Asia"),
]

SCIENCE = [
    ("Which planet is the largest in our solar system?", "Jupiter"),
    ("Which planet is closest to the Sun?", "Mercury"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("Which planet is famous for its large, bright rings?", "Saturn"),
    ("What is the chemical formula of water?", "H2O", "H₂O"),
    ("What gas do plants take in from the air for photosynthesis?", "carbon dioxide", "CO2", "CO₂"),
    ("Which gas makes up most of Earth's atmosphere?", "nitrogen"),
    ("What gas do humans need to breathe in to stay alive?", "oxygen"),
    ("What is the hardest natural substance?", "diamond", "diamonds"),
    ("What is the largest organ of the human body?", "the skin", "skin"),
    ("What is the natural satellite of the Earth called?", "the Moon", "Moon"),
    ("What force pulls objects toward the Earth?", "gravity"),
    ("Who developed the theory of relativity?", "Albert Einstein", "Einstein"),
    ("Who formulated the three laws of motion?", "Isaac Newton", "Newton"),
    ("Who discovered penicillin?", "Alexander Fleming", "Fleming"),
    ("What is the center of an atom called?", "the nucleus", "nucleus"),
    ("Which particle in an atom has a negative charge?", "the electron", "electron"),
    ("What is frozen water called?", "ice"),
]

# chemical symbols: matched with their case (a symbol's case is part of it)
SYMBOLS = {"gold": "Au", "silver": "Ag", "iron": "Fe", "sodium": "Na", "copper": "Cu",
           "lead": "Pb", "mercury": "Hg", "tin": "Sn", "zinc": "Zn", "calcium": "Ca"}

ANIMALS = [
    ("What is the fastest land animal?", "the cheetah", "cheetah", "cheetahs"),
    ("What is the largest mammal on Earth?", "the blue whale", "blue whale"),
    ("What is the largest land animal?", "the elephant", "elephant", "elephants"),
    ("What is the tallest animal in the world?", "the giraffe", "giraffe", "giraffes"),
    ("What sweet food do bees make?", "honey"),
    ("What is a baby cat called?", "a kitten", "kitten"),
    ("What is a baby dog called?", "a puppy", "puppy", "pup"),
    ("What is a baby cow called?", "a calf", "calf"),
    ("Which animal is known as the king of the jungle?", "the lion", "lion"),
]

PEOPLE = [
    ("Who wrote Romeo and Juliet?", "William Shakespeare", "Shakespeare"),
    ("Who wrote Hamlet?", "William Shakespeare", "Shakespeare"),
    ("Who wrote Pride and Prejudice?", "Jane Austen", "Austen"),
    ("Who wrote the novel 1984?", "George Orwell", "Orwell"),
    ("Who wrote War and Peace?", "Leo Tolstoy", "Tolstoy"),
    ("Who wrote Don Quixote?", "Miguel de Cervantes", "Cervantes"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "Leonardo", "da Vinci"),
    ("Who painted The Starry Night?", "Vincent van Gogh", "van Gogh"),
    ("Who composed the opera The Magic Flute?", "Wolfgang Amadeus Mozart", "Mozart"),
    ("Who was the first President of the United States?", "George Washington", "Washington"),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong", "Armstrong"),
]

YEARS = [
    ("In which year did World War II end?", "1945"),
    ("In which year did World War I begin?", "1914"),
    ("In which year did people first land on the Moon?", "1969"),
    ("In which year did the Berlin Wall fall?", "1989"),
    ("In which year did Christopher Columbus first reach the Americas?", "1492"),
]

CURRENCIES = [
    ("What is the currency of Japan?", "the yen", "yen"),
    ("What is the currency of the United Kingdom?", "the pound sterling", "pound", "pounds", "sterling"),
    ("What is the currency of the United States?", "the US dollar", "dollar", "dollars"),
    ("What is the currency of India?", "the rupee", "rupee", "rupees"),
    ("What is the currency of Mexico?", "the peso", "peso", "pesos"),
    ("What currency is used in Germany?", "the euro", "euro", "euros"),
    ("What is the currency of Russia?", "the ruble", "ruble", "rouble", "rubles", "roubles"),
    ("What is the currency of China?", "the renminbi (yuan)", "renminbi", "yuan"),
]

LANGUAGES = [
    ("What language is mainly spoken in Brazil?", "Portuguese"),
    ("What language is mainly spoken in Mexico?", "Spanish"),
    ("What language is mainly spoken in Argentina?", "Spanish"),
    ("What language is mainly spoken in Egypt?", "Arabic"),
    ("What language is mainly spoken in Germany?", "German"),
    ("What language is mainly spoken in Japan?", "Japanese"),
    ("What language is mainly spoken in the Netherlands?", "Dutch"),
]

WORDS = [  # opposites, plurals, past tenses
    ("What is the opposite of hot?", "cold"),
    ("What is the opposite of up?", "down"),
    ("What is the opposite of wet?", "dry"),
    ("What is the opposite of full?", "empty"),
    ("What is the opposite of fast?", "slow"),
    ("What is the opposite of happy?", "sad", "unhappy"),
    ("What is the opposite of early?", "late"),
    ("What is the opposite of day?", "night"),
    ("What is the plural of mouse?", "mice"),
    ("What is the plural of child?", "children"),
    ("What is the plural of tooth?", "teeth"),
    ("What is the plural of goose?", "geese"),
    ("What is the plural of woman?", "women"),
    ("What is the past tense of go?", "went"),
    ("What is the past tense of run?", "ran"),
    ("What is the past tense of eat?", "ate"),
    ("What is the past tense of swim?", "swam"),
]

TRANSLATIONS = [
    ("How do you say 'thank you' in French?", "merci"),
    ("How do you say 'hello' in Spanish?", "hola"),
    ("How do you say 'thank you' in Spanish?", "gracias"),
    ("How do you say 'yes' in German?", "ja"),
    ("How do you say 'cat' in Spanish?", "gato"),
    ("How do you say 'water' in French?", "eau"),
    ("How do you say 'dog' in French?", "chien"),
    ("How do you say 'one' in Italian?", "uno"),
]

CALENDAR = [
    ("What day of the week comes after Monday?", "Tuesday"),
    ("What day of the week comes before Sunday?", "Saturday"),
    ("What month comes after March?", "April"),
    ("What is the last month of the year?", "December"),
    ("Which month of the year has the fewest days?", "February"),
    ("What season comes after winter?", "spring"),
    ("What season comes after summer?", "autumn", "fall"),
]

COLORS = [
    ("What color do you get by mixing blue and yellow paint?", "green"),
    ("What color do you get by mixing red and white paint?", "pink"),
    ("What color do you get by mixing red and yellow paint?", "orange"),
    ("What color is the sky on a clear day?", "blue"),
    ("What color is a ripe banana?", "yellow"),
    ("What color is fresh grass?", "green"),
]

# (prompt, expected number, spelled-out word or None)
COUNTS = [
    ("How many planets are in our solar system?", 8, "eight"),
    ("How many legs does a spider have?", 8, "eight"),
    ("How many legs does an insect have?", 6, "six"),
    ("How many chambers does the human heart have?", 4, "four"),
    ("How many bones are in the adult human body?", 206, None),
    ("How many sides does a triangle have?", 3, "three"),
    ("How many sides does a pentagon have?", 5, "five"),
    ("How many sides does a hexagon have?", 6, "six"),
    ("How many sides does an octagon have?", 8, "eight"),
    ("How many degrees are in a right angle?", 90, "ninety"),
    ("How many degrees are in a full circle?", 360, None),
    ("What do the angles of a triangle add up to, in degrees?", 180, None),
    ("What is the smallest prime number?", 2, "two"),
    ("How many days are in September?", 30, "thirty"),
    ("How many days does February have in a leap year?", 29, None),
    ("How many days are in a leap year?", 366, None),
    ("How many days are in a year that is not a leap year?", 365, None),
    ("At how many degrees Celsius does water boil at sea level?", 100, None),
    ("At how many degrees Celsius does water freeze at sea level?", 0, "zero"),
    ("At how many degrees Fahrenheit does water boil at sea level?", 212, None),
    ("At how many degrees Fahrenheit does water freeze at sea level?", 32, None),
    ("How many letters are in the word 'apple'?", 5, "five"),
    ("How many letters are in the English alphabet?", 26, None),
]

# unit -> (how many of the smaller unit in one larger unit): exact by definition
UNITS = [
    ("centimeters", "meter", 100), ("millimeters", "centimeter", 10), ("meters", "kilometer", 1000),
    ("grams", "kilogram", 1000), ("milliliters", "liter", 1000), ("seconds", "minute", 60),
    ("minutes", "hour", 60), ("hours", "day", 24), ("days", "week", 7), ("months", "year", 12),
    ("years", "decade", 10), ("years", "century", 100), ("years", "millennium", 1000),
    ("seconds", "hour", 3600), ("minutes", "day", 1440), ("hours", "week", 168),
    ("inches", "foot", 12), ("feet", "yard", 3), ("feet", "mile", 5280), ("yards", "mile", 1760),
    ("ounces", "pound", 16), ("cents", "US dollar", 100), ("bits", "byte", 8),
]

# (amount, smaller unit, larger unit (plural), factor): "How many {small} are in {n} {large}?"
CONVERSIONS = [
    (3, "centimeters", "meters", 100), (5, "meters", "kilometers", 1000), (2, "grams", "kilograms", 1000),
    (4, "minutes", "hours", 60), (3, "seconds", "minutes", 60), (2, "days", "weeks", 7),
    (5, "hours", "days", 24), (3, "feet", "yards", 3), (2, "inches", "feet", 12),
    (6, "milliliters", "liters", 1000), (7, "millimeters", "centimeters", 10), (3, "months", "years", 12),
]
