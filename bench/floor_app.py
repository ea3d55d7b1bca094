"""The import floor of `log entry`'s own stack: a minimal typer app that validates one pydantic
model and renders one sandboxed Jinja template, then appends the result to a file."""

import sys

import typer
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel

app = typer.Typer(add_completion=False)


class Note(BaseModel):
    title: str
    purpose: str


@app.command()
def main(title: str = typer.Option(...), purpose: str = typer.Option(...), out: str = typer.Option(...)) -> None:
    note = Note(title=title, purpose=purpose)
    env = SandboxedEnvironment(undefined=StrictUndefined)
    text = env.from_string("### {{ note.title }}\n**Purpose:** {{ note.purpose }}\n").render(note=note)
    with open(out, "a", encoding="utf-8") as handle:
        handle.write(text)
    typer.echo(1)


if __name__ == "__main__":
    app(args=sys.argv[1:])
