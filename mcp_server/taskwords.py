"""The inputs a task's words name: what a small model's function must take, whatever its examples say.

Asked to "count how many times a character occurs in a text", the embedded Gemma 3 270M wrote a
function of the text alone that counts its words, and its own predicted examples ("cat cat cat" -> 3,
"cat" -> 1) vouched for it. A function that takes fewer parameters than the task names inputs cannot
do the task, so such a candidate fails, and the repair prompt names the inputs.

The reading is narrow, and a lower bound. It counts the phrases that open with "a", "an" or a number
word ("two numbers" counts two) and leaves out the ones that are no input: what something is ("is a
palindrome"), what the function gives ("returns a list"), the function itself ("a function that"),
a whole made of the phrases after it ("an expense with an amount and a date"), and anything in
brackets. "a and b" opens no phrase, so names written as letters count nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_NUMBERS = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5}
# Words that end a phrase: what links it to the rest of the sentence, the verbs a task puts after its
# subject ("a character occurs in"), and the next phrase's opening.
_ENDS = frozenset(
    "of in on at to from by with into for and or than as after before between within without whether "
    "is are be occurs occur appears appear contains contain starts start ends end equals that which who".split()
) | frozenset(_NUMBERS)
# A phrase right after one of these is what something is or what the function gives, not an input.
_NOT_INPUT_AFTER = frozenset(
    "is are be becomes as return returns returning give gives generate generates create creates produce "
    "produces build builds".split()
)
_SELF = frozenset("function tool program script method helper".split())
_LONGEST = 3  # words of a phrase after its opening: "a non-negative whole number"
_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_TOKENS = re.compile(r"[a-z][a-z'-]*|[^\sa-z]")


@dataclass(frozen=True, slots=True)
class TaskInputs:
    """The input phrases a task names, each with how many inputs it stands for."""

    phrases: tuple[tuple[str, int], ...] = ()

    @property
    def count(self) -> int:
        return sum(count for _, count in self.phrases)

    def missing(self, name: str, taken: Sequence[str]) -> str | None:
        """Why a function `name` of the parameters `taken` cannot do the task; None if it may."""
        if len(taken) >= self.count:
            return None
        named = ", ".join(phrase for phrase, _ in self.phrases)
        inputs = "1 input" if self.count == 1 else f"{self.count} inputs"
        takes = f"takes only {', '.join(taken)}" if taken else "takes no parameters"
        return (
            f"the task names {inputs} ({named}), but {name} {takes}: a function cannot use an input it "
            "is not given, so give it one parameter for each input the task names"
        )


ANY = TaskInputs()  # no inputs named: any function may do


def named_inputs(task: str) -> TaskInputs:
    """The input phrases of a task in English, such as ("a character", 1) and ("a text", 1)."""
    words = _TOKENS.findall(_BRACKETS.sub(" ", task.lower()))
    phrases = []
    for index, word in enumerate(words):
        count = _NUMBERS.get(word, 0)
        if not count or (index and words[index - 1] in _NOT_INPUT_AFTER):
            continue
        phrase = []
        for following in words[index + 1 : index + 1 + _LONGEST]:
            if following in _ENDS or not following[0].isalpha():
                break
            phrase.append(following)
        if not phrase or phrase[-1] in _SELF:
            continue
        after = index + 1 + len(phrase)
        if words[after : after + 1] == ["with"]:
            continue  # "an expense with an amount and a date": made of the inputs that follow
        if words[after : after + 1] == ["of"] and words[after + 1 : after + 2] and words[after + 1][0].isalpha():
            phrase += words[after : after + 2]  # "a list of numbers", "a number of years": one input
        phrases.append((" ".join([word, *phrase]), count))
    return TaskInputs(tuple(phrases))
