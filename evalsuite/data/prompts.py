"""The fixed prompt lists of the shipped sets (``t2i-core`` and ``inpaint-core``).

Prompts are plain data composed deterministically from the lists below; the builder in
:mod:`evalsuite.data.build` writes them into the manifests. Changing anything here changes the
shipped manifests and therefore the dataset fingerprints — do it only with a new release.
"""

from __future__ import annotations

CATEGORIES = ("general", "portrait", "e-commerce", "text-rendering", "object-replacement", "object-removal")

# --- text-to-image ---------------------------------------------------------------------------
_T2I_SUBJECTS: dict[str, list[str]] = {
    "general": [
        "a quiet harbour at dawn with fishing boats",
        "a mountain lake reflecting snowy peaks",
        "a busy night market with paper lanterns",
        "a misty pine forest after rain",
        "an old stone bridge over a narrow river",
        "a desert highway under a thunderstorm",
        "a cosy reading nook with a window seat",
        "a field of sunflowers at golden hour",
        "a lighthouse on a rocky cliff in winter",
        "a rooftop garden in a dense city",
        "a red tram climbing a steep street",
        "a frozen waterfall in a canyon",
    ],
    "portrait": [
        "portrait of an elderly woman with silver hair",
        "a young chef in a white jacket smiling",
        "a jazz saxophonist on a dim stage",
        "a child laughing in the rain with a yellow raincoat",
        "a farmer holding a basket of tomatoes",
        "a ballet dancer resting backstage",
        "a cyclist with a muddy face after a race",
        "a scientist in a laboratory wearing safety glasses",
        "a grandfather reading a newspaper",
        "a teenager with headphones on a city bus",
        "a potter at the wheel with clay-covered hands",
        "a firefighter taking off a helmet",
    ],
    "e-commerce": [
        "a leather backpack",
        "a ceramic coffee mug",
        "a pair of white running shoes",
        "a stainless steel wristwatch",
        "a glass perfume bottle",
        "a wireless over-ear headphone",
        "a wooden cutting board with a knife",
        "a linen summer dress on a hanger",
        "a scented soy candle in an amber jar",
        "a compact mirrorless camera",
        "a bottle of olive oil with a cork",
        "a knitted wool scarf folded neatly",
    ],
    "text-rendering": [
        'a neon sign that says "OPEN LATE" above a diner door',
        'a chalkboard menu reading "SOUP OF THE DAY: TOMATO"',
        'a wooden signpost with the words "TRAILHEAD 2 KM"',
        'a birthday cake with icing that spells "HAPPY 30TH ANNA"',
        'a vintage poster with the title "MOON EXPRESS"',
        'a coffee cup sleeve printed with "GOOD MORNING"',
        'a street sign reading "MAPLE AVENUE"',
        'a book cover titled "THE QUIET HOURS"',
        'a shop window decal that says "SALE 50% OFF"',
        'a hand-painted banner reading "WELCOME HOME"',
        'a license plate that reads "EVAL 2024"',
        'a T-shirt printed with the word "DIFFUSION"',
    ],
    "object-replacement": [
        "a red vintage car parked where the bicycle was",
        "a golden retriever sitting in place of the chair",
        "a bouquet of tulips in a glass vase on the table",
        "a stack of old books on the desk",
        "a bright orange pumpkin on the doorstep",
        "a copper teapot on the stove",
        "a blue ceramic bowl of lemons on the counter",
        "a sleeping tabby cat on the sofa",
        "a potted fern on the windowsill",
        "a vintage typewriter on the wooden table",
        "a silver laptop on the kitchen island",
        "a wicker basket of apples on the bench",
    ],
    "object-removal": [
        "an empty park bench under autumn trees",
        "a clean white wall with soft shadows",
        "an empty sandy beach with calm waves",
        "a bare wooden table top",
        "an empty city square with cobblestones",
        "a plain grassy meadow",
        "a clear blue sky without clouds",
        "an empty kitchen counter of white marble",
        "a deserted country road",
        "an empty hallway with a tiled floor",
        "a calm lake surface with no boats",
        "an uncluttered living room floor",
    ],
}

_T2I_STYLES = [
    "photograph",
    "35 mm film photo",
    "soft natural light",
    "studio lighting, high detail",
    "overcast day, muted colours",
    "cinematic lighting",
    "shallow depth of field",
    "wide-angle shot",
    "shot on a medium format camera",
    "evening light, warm tones",
]

_CATEGORY_STYLE = {
    "e-commerce": "product shot on a white background",
    "object-removal": "nothing else in the frame",
}

_LONG_TAIL = (
    " The scene is composed with care: the main subject sits slightly off centre following the rule of"
    " thirds, the background falls gently out of focus, and fine details such as the texture of fabric,"
    " the grain of wood and the small reflections on glass and metal surfaces are clearly visible. The"
    " colours are natural and balanced, with soft highlights, deep but not crushed shadows, and a subtle"
    " warm tone that makes the whole image feel calm, realistic and carefully photographed by a professional."
)


def t2i_prompts() -> list[tuple[str, str]]:
    """All ``t2i-core`` prompts as ``(category, prompt)``: 36 per category (216 in all).

    Every third prompt is a long one (the short prompt plus a descriptive paragraph) and is longer
    than CLIP's 77-token context, like the long captions used in the seed article.
    """
    out: list[tuple[str, str]] = []
    for cat in CATEGORIES:
        subjects = _T2I_SUBJECTS[cat]
        for i in range(36):
            subject = subjects[i % len(subjects)]
            style = _T2I_STYLES[(i * 7 + len(cat)) % len(_T2I_STYLES)]
            if i // len(subjects) == 1:
                style = (
                    _T2I_STYLES[(i * 3 + 1) % len(_T2I_STYLES)]
                    + ", "
                    + _CATEGORY_STYLE.get(cat, "high detail")
                )
            prompt = f"{subject}, {style}"
            if i // len(subjects) == 2:
                prompt = f"{subject}, {style}." + _LONG_TAIL
            out.append((cat, prompt))
    return out


# --- inpainting -------------------------------------------------------------------------------
# What each shipped photo shows, and what a prompt for each category may put in the masked region.
PHOTO_PROMPTS: dict[str, dict[str, list[str]]] = {
    "astronaut": {
        "general": ["an astronaut in an orange flight suit in front of a flag, official portrait photo"],
        "portrait": [
            "a smiling astronaut wearing a red scarf, studio portrait",
            "a woman astronaut with short dark hair, formal NASA portrait, soft light",
        ],
        "e-commerce": ["a white space helmet on a display stand, product photo"],
        "text-rendering": ['a name patch on the suit that reads "COLLINS" in bold letters'],
        "object-replacement": ["a bouquet of white roses held in her arms"],
        "object-removal": ["a plain studio backdrop with soft gradient lighting"],
    },
    "chelsea": {
        "general": ["a tabby cat resting on a wooden floor, indoor photo"],
        "portrait": ["close-up portrait of a tabby cat with green eyes, shallow depth of field"],
        "e-commerce": ["a pet collar with a brass tag, product photo on a neutral background"],
        "text-rendering": ['a small food bowl with the name "CHELSEA" painted on it'],
        "object-replacement": [
            "a small white puppy sitting on the floor",
            "a fluffy grey rabbit sitting on the floor",
        ],
        "object-removal": ["an empty wooden floor with soft window light"],
    },
    "coffee": {
        "general": ["a cup of coffee with latte art on a wooden table, cafe photo"],
        "portrait": ["a barista's hands holding a saucer, warm cafe light"],
        "e-commerce": [
            "a glass of iced latte on a saucer, product photo, soft light",
            "a white porcelain cup and saucer, catalogue product shot",
        ],
        "text-rendering": ['a paper coffee cup printed with "PIKOLO ESPRESSO"'],
        "object-replacement": ["a slice of chocolate cake on a small plate"],
        "object-removal": ["a bare wooden table top with natural grain"],
    },
    "rocket": {
        "general": ["a rocket lifting off at dusk with a bright exhaust plume"],
        "portrait": ["a launch engineer in a white hard hat watching the launch"],
        "e-commerce": ["a detailed scale model of a rocket on a stand, product photo"],
        "text-rendering": [
            'a launch pad sign that reads "EVALSUITE" in bold white letters',
            'large letters on the rocket body spelling "FALCON"',
        ],
        "object-replacement": ["a tall water tower next to the launch pad"],
        "object-removal": ["an empty launch pad under a clear evening sky"],
    },
    "hubble": {
        "general": ["a deep field of distant galaxies, space telescope image"],
        "portrait": ["a spiral galaxy seen face-on, bright core, astronomical image"],
        "e-commerce": ["a framed astronomy print of galaxies, product photo"],
        "text-rendering": ['a caption in the corner reading "DEEP FIELD 2012" in thin white letters'],
        "object-replacement": ["a bright blue nebula among the galaxies"],
        "object-removal": ["empty black space with a few faint stars"],
    },
    "ihc": {
        "general": ["a microscope image of stained tissue with brown and blue cells"],
        "portrait": ["a single large cell in focus, microscope photo"],
        "e-commerce": ["a glass microscope slide on a white background, product photo"],
        "text-rendering": ['a scale bar label that reads "50 µm"'],
        "object-replacement": ["a cluster of round purple cells"],
        "object-removal": ["pale empty tissue background with no cells"],
    },
    "retina": {
        "general": ["a fundus photograph of a healthy human retina"],
        "portrait": ["a close-up of a human eye's retina with a bright optic disc"],
        "e-commerce": ["an ophthalmology camera lens, product photo"],
        "text-rendering": ['a label at the bottom reading "LEFT EYE" in white letters'],
        "object-replacement": ["a branching network of thin red blood vessels"],
        "object-removal": ["smooth orange retinal background without vessels"],
    },
    "motorcycle": {
        "general": ["a motorcycle parked in a workshop, indoor photo"],
        "portrait": ["a rider in a leather jacket standing next to the motorcycle"],
        "e-commerce": ["a shiny red motorcycle helmet, product photo"],
        "text-rendering": ['a fuel tank decal that reads "THUNDER" in chrome letters'],
        "object-replacement": ["a vintage bicycle with a wicker basket"],
        "object-removal": ["an empty concrete workshop floor"],
    },
    "grace_hopper": {
        "general": ["a formal portrait of a naval officer in uniform, studio photo"],
        "portrait": ["a smiling older woman in a navy uniform with medals, studio portrait"],
        "e-commerce": ["a navy officer's peaked cap, product photo on a dark background"],
        "text-rendering": ['a name plate on the uniform that reads "HOPPER"'],
        "object-replacement": ["a string of pearls instead of the medals"],
        "object-removal": ["a plain dark studio backdrop"],
    },
    "camera": {
        "general": ["a black and white photo of a photographer with a tripod camera on a lawn"],
        "portrait": ["a man in a dark coat looking through a camera, black and white portrait"],
        "e-commerce": ["a vintage film camera on a tripod, product photo"],
        "text-rendering": ['a sign on the tripod that reads "PHOTO WALK" in block letters'],
        "object-replacement": ["a telescope on a tripod instead of the camera"],
        "object-removal": ["an empty lawn with buildings in the distance"],
    },
}
