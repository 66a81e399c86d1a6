"""Languages: card codes to names a query would use, and the languages a task description asks for.

Cards tag languages by code (`fr`); a description says "French", or nothing, in which case the task
is in the language it is written in (English here, as `TaskSpec.language` defaults to).
"""

from __future__ import annotations

import re

from .text import words

# ISO 639 codes that cards use, named as a query would say them ("French", not "fr").
LANGUAGES = {
    "af": "Afrikaans", "am": "Amharic", "ar": "Arabic", "as": "Assamese", "az": "Azerbaijani", "be": "Belarusian",
    "bg": "Bulgarian", "bn": "Bengali", "bo": "Tibetan", "br": "Breton", "bs": "Bosnian", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish",
    "fil": "Filipino", "fo": "Faroese", "fr": "French", "fy": "Frisian", "ga": "Irish", "gd": "Gaelic",
    "gl": "Galician", "gu": "Gujarati", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "ht": "Haitian", "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian", "ig": "Igbo", "is": "Icelandic",
    "it": "Italian", "ja": "Japanese", "jv": "Javanese", "ka": "Georgian", "kk": "Kazakh", "km": "Khmer",
    "kn": "Kannada", "ko": "Korean", "ku": "Kurdish", "ky": "Kyrgyz", "la": "Latin", "lb": "Luxembourgish",
    "lo": "Lao", "lt": "Lithuanian", "lv": "Latvian", "mg": "Malagasy", "mi": "Maori", "mk": "Macedonian",
    "ml": "Malayalam", "mn": "Mongolian", "mr": "Marathi", "ms": "Malay", "mt": "Maltese", "my": "Burmese",
    "nb": "Norwegian", "ne": "Nepali", "nl": "Dutch", "nn": "Norwegian", "no": "Norwegian", "or": "Odia",
    "pa": "Punjabi", "pl": "Polish", "ps": "Pashto", "pt": "Portuguese", "qu": "Quechua", "ro": "Romanian",
    "ru": "Russian", "rw": "Kinyarwanda", "sa": "Sanskrit", "sd": "Sindhi", "si": "Sinhala", "sk": "Slovak",
    "sl": "Slovenian", "so": "Somali", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili",
    "ta": "Tamil", "te": "Telugu", "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tl": "Tagalog",
    "tr": "Turkish", "tt": "Tatar", "ug": "Uyghur", "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek",
    "vi": "Vietnamese", "xh": "Xhosa", "yi": "Yiddish", "yo": "Yoruba", "yue": "Cantonese", "zh": "Chinese",
    "zu": "Zulu", "code": "code",
}


def language_name(code: str) -> str:
    """`fr` or `fr-FR` -> `French`; unknown codes are returned as they are."""
    base = code.split("-")[0].split("_")[0].lower()
    return LANGUAGES.get(base, code)


_BY_NAME = {}
for _code, _name in LANGUAGES.items():
    if _code != "code":
        _BY_NAME.setdefault(_name.lower(), _code)
_CODE_PART = re.compile(r"[-_.]")


def query_languages(query: str, default: str = "en") -> tuple[str, ...]:
    """Languages a description names ("Translate French into English" -> French, English), else `default`'s."""
    found = [LANGUAGES[_BY_NAME[w]] for w in words(query) if w in _BY_NAME]
    return tuple(dict.fromkeys(found)) or ((language_name(default),) if default else ())


def config_languages(config: str) -> list[str]:
    """Language names hidden in a config name: `fr-en` -> French, English; `xquad.de` -> German."""
    parts = [p for p in _CODE_PART.split(config.lower()) if p]
    if not parts or len(parts) > 4:
        return []
    return [LANGUAGES[p] for p in parts if p in LANGUAGES and p != "code" and len(p) in (2, 3)]
