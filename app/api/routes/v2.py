"""The Open Inference Protocol (KServe v2) with Triton's binary tensor extension."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/v2", tags=["v2 (Open Inference Protocol)"])
