"""MATH (Hendrycks et al.): problem / solution, the final answer in \\boxed{...}.

hendrycks/competition_math was taken down from the Hugging Face Hub after a DMCA notice
(AoPS, January 2025); the pack reads the live mirror EleutherAI/hendrycks_math, whose 7 subject
configs are loaded one by one and concatenated. The solution is kept verbatim; a solution with no
\\boxed{...} (or \\fbox{...}) answer is skipped, as graders look for it.
"""

from __future__ import annotations

from ._base import RowConverter, Skip, Source, text

SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


def boxed_answer(solution: str) -> str | None:
    """The content of the last \\boxed{...} / \\fbox{...} (or `\\boxed 5`), braces balanced."""
    found = [(solution.rfind(macro), macro) for macro in ("\\boxed", "\\fbox")]
    start, macro = max(found)
    if start < 0:
        return None
    i = start + len(macro)
    if solution.startswith(" ", i):  # "\\boxed 5": one token, up to "$" or a space
        rest = solution[i + 1 :].split("$")[0].split()
        return rest[0] if rest else None
    if not solution.startswith("{", i):
        return None
    depth = 0
    for j in range(i, len(solution)):
        depth += {"{": 1, "}": -1}.get(solution[j], 0)
        if depth == 0:
            return solution[i + 1 : j]
    return None  # unbalanced


class MathConverter(RowConverter):
    def conversation(self, row, fix):
        problem, solution = text(row, "problem"), text(row, "solution")
        if boxed_answer(solution) is None:
            raise Skip("no_boxed_answer")
        return [{"input": problem, "output": solution}]


SOURCE = Source(
    name="math",
    converter=MathConverter,
    hub_id="EleutherAI/hendrycks_math",
    hub_configs=SUBJECTS,
    splits=("train", "test"),
    licence="MIT (card of the original hendrycks/competition_math)",
    rows="train 7,500; test 5,000 (over the 7 subject configs)",
    rules="problem -> input, solution (with its \\boxed{} answer) -> output; rows without a "
    "\\boxed{} answer skipped",
    notes="hendrycks/competition_math was taken down after a DMCA notice from AoPS "
    "(2025-01-02); this is the mirror lm-evaluation-harness uses. The problems are AoPS "
    "competition problems: the takedown is a licensing risk for redistribution",
)
