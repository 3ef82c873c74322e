"""Sentences about people and what a structured-output call should read from them (the real pair's
LangChain and LlamaIndex tests share them)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(description="The person's first name")
    age: int = Field(description="Age in years")


PEOPLE = [("Alice is 30 years old.", "Alice", 30), ("Bob turned 45 last week.", "Bob", 45),
          ("My grandmother Rose is 82.", "Rose", 82), ("Tom, aged 19, studies physics.", "Tom", 19),
          ("The new manager, Priya, is 38 years old.", "Priya", 38)]
