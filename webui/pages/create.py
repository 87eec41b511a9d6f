"""Create: every VideoSpec option, grouped as users know them; then the task, followed to the
end: its stages, the player, downloads, and the social text."""

from __future__ import annotations

import json
import time
import uuid

import streamlit as st

from webui.client import FacadeError
from webui.form import GROUPS, group, load_into_session
from webui.i18n import t
from webui.ui import (
    ENDED,
    absolute,
    config,
    error,
    facade,
    require_signin,
    role,
    show_task,
    stage_lines,
)

require_signin()
st.title(t("create.title"))
try:
    cfg = config()
    voices = [v["id"] for v in facade().voices() if v["offline"]]
except FacadeError as exc:
    error(exc)
    st.stop()
schema, limits = cfg["spec_schema"], cfg["limits"]
props = schema["properties"]

# "Make again" (Tasks page) and presets put a spec here to fill the form with.
if "prefill" in st.session_state:
    load_into_session(st.session_state.pop("prefill"))

if not cfg["llm_configured"]:
    st.caption(t("create.no_llm"))
topic = st.text_input(t("create.topic"), key="f.topic", max_chars=int(limits["max_topic_chars"]))
script = st.text_area(t("create.script"), key="f.script", height=180)
language = st.text_input(t("field.language"), key="f.language", placeholder="auto")

uploads: dict[str, str] = st.session_state.setdefault("uploads", {})


def uploaded(files: list, what: str, folder: str | None = None) -> list[str]:
    """Send each new file to the facade once; the paths it answered, or its one-line error."""
    paths = []
    for file in files:
        ident = f"{what}:{file.file_id}"
        if ident not in uploads:
            if file.size > limits["max_upload_mb"] * 2**20:
                st.error(
                    t(
                        "error.prefix",
                        message=f"{file.name} is larger than {limits['max_upload_mb']:g} MB",
                    )
                )
                continue
            try:
                answer = facade().upload(file.name, file.getvalue(), folder)
            except FacadeError as exc:
                error(exc)
                continue
            uploads[ident] = answer["path"]
            st.caption(t("create.uploaded", name=file.name))
        paths.append(uploads[ident])
    return paths


spec: dict = {}
for label, fields in GROUPS:
    with st.expander(t(label), expanded=label == "group.frame"):
        spec |= group(schema, fields, voices)
        if label == "group.footage":
            folder = st.session_state.setdefault(
                "footage_folder", f"footage-{uuid.uuid4().hex[:8]}"
            )
            files = st.file_uploader(
                t("create.upload_footage"), accept_multiple_files=True, key="up_footage"
            )
            if files and uploaded(files, "footage", folder):
                spec["materials_dir"] = uploads[f"footage:{files[0].file_id}"].rsplit("/", 1)[0]
        if label == "group.voice":
            narration = st.file_uploader(t("create.upload_narration"), key="up_narration")
            if narration and (paths := uploaded([narration], "narration")):
                spec["audio"] = paths[0]
            if st.button(t("create.preview_voice"), key="voice_preview"):
                try:
                    sample = {"script": t("create.preview_text"), "voice": spec.get("voice")}
                    st.session_state["preview_task"] = facade().create("audios", sample)["task_id"]
                except FacadeError as exc:
                    error(exc)
            preview = st.session_state.get("preview_task")
            if preview:
                for _ in range(30):  # a short sample: seconds, asked once a second at most
                    task = facade().task(preview)
                    if task["state"] in ENDED:
                        break
                    time.sleep(1)
                if task.get("signed_urls", {}).get("audio"):
                    st.audio(absolute(task["signed_urls"]["audio"]))
                elif task["state"] in ENDED:
                    st.error(t("create.failed", error=task.get("error") or task["state"]))
        if label == "group.music":
            music = st.file_uploader(t("create.upload_music"), key="up_music")
            choice = st.selectbox(t("field.music"), ["none", "random"], key="f.music_choice")
            spec["music"] = choice
            if music and (paths := uploaded([music], "music")):
                spec["music"] = paths[0]

if topic.strip():
    spec["topic"] = topic.strip()
if script.strip():
    spec["script"] = script
if language and language.strip():
    spec["language"] = language.strip()

with st.expander(t("create.presets")):
    st.download_button(
        t("create.preset_save"),
        json.dumps(spec, ensure_ascii=False, indent=2),
        file_name="preset.json",
        mime="application/json",
        key="preset_save",
    )
    preset = st.file_uploader(t("create.preset_load"), type=["json"], key="preset_load")
    if preset is not None and st.session_state.get("preset_loaded") != preset.file_id:
        try:
            data = json.loads(preset.getvalue())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            st.error(t("create.preset_bad", error=exc))
        else:
            st.session_state["preset_loaded"] = preset.file_id
            st.session_state["prefill"] = data
            st.rerun()

if role() == "viewer":
    st.info(t("create.viewer"))
elif st.button(t("create.generate"), key="generate", type="primary"):
    if not spec.get("topic") and not spec.get("script") and not spec.get("audio"):
        st.error(t("create.need_text"))
    elif len(spec.get("script", "")) > limits["max_script_chars"]:
        st.error(
            t(
                "create.script_too_long",
                n=len(spec["script"]),
                limit=int(limits["max_script_chars"]),
            )
        )
    else:
        try:
            created = facade().create("videos", spec)
        except FacadeError as exc:
            error(exc)
        else:
            st.session_state["current_task"] = created["task_id"]
            st.session_state["current_seen"] = {}
            st.success(t("create.started", task_id=created["task_id"]))


def follow() -> None:
    """The task as it goes: one request a second, and none once it has ended."""
    task_id = st.session_state.get("current_task")
    if not task_id:
        return
    last = st.session_state.get("current_last")
    fresh = time.monotonic() - st.session_state.get("current_asked", 0.0) < 0.95
    if last and last["task_id"] == task_id and (last["state"] in ENDED or fresh):
        task = last  # ended, or asked under a second ago (a rerun of the page between ticks)
    else:
        st.session_state["current_asked"] = time.monotonic()
        try:
            task = facade().task(task_id)
        except FacadeError as exc:
            error(exc)
            return
        st.session_state["current_last"] = task
    seen = st.session_state.setdefault("current_seen", {})
    if task.get("stage") and task["stage"] not in seen:
        seen[task["stage"]] = time.monotonic()
    if task["state"] in ENDED and "end" not in seen:
        seen["end"] = time.monotonic()
    state = {"completed": "complete", "failed": "error", "cancelled": "error"}.get(
        task["state"], "running"
    )
    with st.status(t("create.following"), state=state, expanded=True):
        st.progress(min(1.0, task["progress"] / 100), text=f"{task['progress']:.0f}%")
        st.markdown("\n\n".join(stage_lines(task, seen)))
    if task["state"] == "completed":
        st.success(t("create.done", seconds=task.get("duration_s") or 0))
        show_task(task, f"current-{task_id}")
    elif task["state"] == "awaiting_review":
        st.info(t("create.awaiting_review"))
        show_task(task, f"current-{task_id}")
    elif task["state"] in ENDED:
        st.error(t("create.failed", error=task.get("error") or task["state"]))
    if task["state"] in ENDED | {"awaiting_review"} and st.session_state.get("polling"):
        st.session_state["polling"] = False
        st.rerun()  # the whole page again: the fragment stops ticking


# Ticks once a second while the task runs; without ticks (and requests) once it has ended.
last = st.session_state.get("current_last") or {}
running = bool(st.session_state.get("current_task")) and last.get("state") not in (
    ENDED | {"awaiting_review"}
)
st.session_state["polling"] = running
st.fragment(run_every=1.0 if running else None)(follow)()
