"""``fanout`` — the command line entry point.

Commands live in their own modules and are imported only when invoked (``COMMANDS`` maps a command
name to ``module:attribute``), so ``fanout --help`` stays fast and a command's heavy imports (pandas,
the durable engine) are paid only by that command.
"""

from __future__ import annotations

import importlib

import click

from shared.errors import FanoutError

#: command name -> "module:attribute" of a click command. Add one line per command.
COMMANDS: dict[str, str] = {
    "agent": "shared.cli.agent:agent",
    "assets": "shared.cli.assets:assets",
    "run": "shared.cli.run:run",
    "cancel": "shared.cli.cancel:cancel",
    "logs": "shared.cli.logs:logs",
    "resume": "shared.cli.resume:resume",
    "serve": "shared.cli.serve:serve",
    "status": "shared.cli.status:status",
    "submit": "shared.cli.submit:submit",
    "validate": "shared.cli.validate:validate",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:  # noqa: ARG002
        """Every command name, for ``--help``, without importing any command module."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:  # noqa: ARG002
        """Import the module of ``cmd_name`` and return its command; None for an unknown name."""
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """Fanout: Azure ML pipelines and parallel jobs on your own Azure subscription, or on this machine."""
    from shared.logconfig import configure_logging

    configure_logging("DEBUG" if verbose > 1 else "INFO" if verbose else "WARNING")
    ctx.ensure_object(dict)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI; a FanoutError becomes a one-line message and exit 1.

    Commands signal failure by returning (or ``ctx.exit``-ing with) a non-zero int.
    """
    try:
        result = cli.main(args=argv, prog_name="fanout", standalone_mode=False)
    except FanoutError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from exc
    except click.exceptions.Abort as exc:
        raise SystemExit(130) from exc
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from exc
    raise SystemExit(result if isinstance(result, int) else 0)
