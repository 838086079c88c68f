"""The step catalogue: what each of the 7 steps is and, for renders, what the model is asked."""

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_STEPS", "LAST_STEP", "StepSpec", "step_spec"]

LAST_STEP: Final = 6


class StepSpec(BaseModel):
    """One step: analysis (step 0) or a render made from the previous step's image."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: int = Field(ge=0, le=LAST_STEP)
    kind: Literal["analysis", "render"]
    name: str = Field(min_length=1, max_length=60)
    prompt: str = Field(default="", max_length=2_000)
    prompt_version: str = Field(default="render-v1", pattern=r"^[a-z0-9.-]{1,40}$")


DEFAULT_STEPS: Final[tuple[StepSpec, ...]] = (
    StepSpec(step_id=0, kind="analysis", name="space analysis", prompt_version="extract-v1"),
    StepSpec(
        step_id=1,
        kind="render",
        name="furnished plan",
        prompt="Furnish every room of this floor plan to scale; keep walls, doors and labels.",
    ),
    StepSpec(
        step_id=2,
        kind="render",
        name="styled plan",
        prompt="Apply a coherent interior style (materials, colours) to the furnished plan.",
    ),
    StepSpec(
        step_id=3,
        kind="render",
        name="lighting plan",
        prompt="Add natural and artificial lighting to the styled plan; keep the layout.",
    ),
    StepSpec(
        step_id=4,
        kind="render",
        name="finishes",
        prompt="Render floor and wall finishes at full resolution; keep every room's outline.",
    ),
    StepSpec(
        step_id=5,
        kind="render",
        name="axonometric view",
        prompt="Render a top-down axonometric view of the finished plan.",
    ),
    StepSpec(
        step_id=6,
        kind="render",
        name="presentation board",
        prompt="Compose the final presentation image of the design.",
    ),
)


def step_spec(catalogue: tuple[StepSpec, ...], step_id: int) -> StepSpec:
    """The catalogue entry of ``step_id``."""
    for spec in catalogue:
        if spec.step_id == step_id:
            return spec
    raise KeyError(f"step {step_id} is not in the step catalogue")
