"""Checks on what clients send, shared by the gRPC server and the HTTP bridge, so both refuse
the same things with the same words. Every failure is an InputError that names the value and
says what to send instead."""

from __future__ import annotations

from liveedit.errors import InputError

# The text encoder reads 512 tokens; 4000 characters is well past that and still small.
MAX_INSTRUCTION_CHARS = 4000
MAX_FRAME_SIDE = 8192
MIN_FRAME_SIDE = 2
MAX_SEED = 2**63 - 1


def check_instruction(instruction: str, where: str = "instruction") -> str:
    text = instruction.strip()
    if not text:
        raise InputError(f"{where} is empty: say what the edit should do, e.g. 'make the sky stormy'")
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise InputError(f"{where} is {len(instruction)} characters long; the limit is "
                         f"{MAX_INSTRUCTION_CHARS}: shorten it")
    if "\x00" in instruction:
        raise InputError(f"{where} contains a NUL character; send plain text")
    return text


def check_seed(seed: int, where: str = "seed") -> int:
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"{where} {seed} is out of range; use 0 to {MAX_SEED}")
    return seed


def check_frame_size(width: int, height: int, where: str = "frame size") -> tuple[int, int]:
    for name, value in (("width", width), ("height", height)):
        if not MIN_FRAME_SIDE <= value <= MAX_FRAME_SIDE:
            raise InputError(f"{where}: {name} {value} is outside {MIN_FRAME_SIDE}..{MAX_FRAME_SIDE} "
                             "pixels; send the real frame size")
    return width, height
