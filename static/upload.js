// The composer on /upload: previews, filters with live CSS previews, per-photo alt text, drag and drop, a caption
// counter, "Use my location", and an upload with a progress bar. Without this file the page is a plain multipart
// form with the same field names (photos, filter_<i>, alt_<i>, caption, place_*, sensitive), so the server is
// the same either way. CSP: no inline styles, so looks are set through the CSSOM (element.style.filter).
(function () {
  "use strict";

  const form = document.getElementById("compose");
  if (!form) return;

  const maxPhotos = Number(form.dataset.maxPhotos) || 10;
  const maxCaption = Number(form.dataset.maxCaption) || 2200;
  const maxPhotoBytes = (Number(form.dataset.maxPhotoMb) || 25) * 1024 * 1024;
  const maxBodyBytes = (Number(form.dataset.maxBodyMb) || 220) * 1024 * 1024;
  const filters = JSON.parse(form.dataset.filters || "[]");
  const filterByName = new Map(filters.map((f) => [f.name, f]));

  const $ = (id) => document.getElementById(id);
  const input = $("f-photos");
  const picker = $("picker");
  const dropzone = $("dropzone");
  const stage = $("stage");
  const stageFrame = $("stage-frame");
  const stagePic = $("stage-pic");
  const stageImg = $("stage-img");
  const stageCount = $("stage-count");
  const thumbs = $("thumbs");
  const strip = $("filter-strip");
  const errorBox = $("compose-error");
  const caption = $("f-caption");
  const captionNote = $("caption-note");
  const share = $("share");
  const progress = $("progress");
  const progressBar = $("progress-bar");
  const progressText = $("progress-text");
  const slots = [...form.querySelectorAll(".slot")];

  let items = []; // {file, url} in post order; slot i holds photo i's filter and alt text
  let active = 0;
  let busy = false;

  // ---- Enhance: the JS-only controls appear, the per-photo fields become one editor for the selected photo.
  form.classList.add("enhanced");
  form.querySelectorAll(".js-only").forEach((el) => { el.hidden = false; });
  $("photo-fields").open = true;

  const filterOf = (i) => slots[i].querySelector("select").value;
  const altOf = (i) => slots[i].querySelector("textarea");

  function applyLook(frame, img, name) {
    const look = filterByName.get(name) || { css: "none", layers: [] };
    img.style.filter = look.css === "none" ? "" : look.css;
    frame.querySelectorAll(".fx-layer").forEach((layer) => layer.remove());
    for (const [background, blend] of look.layers) {
      const layer = document.createElement("span");
      layer.className = "fx-layer";
      layer.setAttribute("aria-hidden", "true");
      layer.style.background = background;
      layer.style.mixBlendMode = blend;
      frame.appendChild(layer);
    }
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
    if (message) {
      errorBox.tabIndex = -1;
      errorBox.scrollIntoView({ block: "center", behavior: "smooth" });
      errorBox.focus({ preventScroll: true });
    }
  }

  // Keep the real file input in step, so the form is right even if submitted without us.
  function syncInput() {
    try {
      const transfer = new DataTransfer();
      items.forEach((item) => transfer.items.add(item.file));
      input.files = transfer.files;
    } catch (_) { /* old browsers: the XHR below sends our list anyway */ }
  }

  function addFiles(fileList) {
    const notes = [];
    for (const file of fileList) {
      if (items.length >= maxPhotos) {
        notes.push(`A post holds up to ${maxPhotos} photos; the rest were left out.`);
        break;
      }
      if (file.size > maxPhotoBytes) {
        notes.push(`${file.name} is larger than ${form.dataset.maxPhotoMb} MB.`);
        continue;
      }
      const slot = slots[items.length];
      slot.querySelector("select").value = "normal";
      altOf(items.length).value = "";
      items.push({ file, url: URL.createObjectURL(file) });
    }
    showError(notes.join(" "));
    if (items.length) active = Math.min(active, items.length - 1);
    syncInput();
    render();
  }

  function removeAt(index) {
    URL.revokeObjectURL(items[index].url);
    for (let j = index; j < items.length - 1; j++) {
      slots[j].querySelector("select").value = filterOf(j + 1);
      altOf(j).value = altOf(j + 1).value;
    }
    const last = items.length - 1;
    slots[last].querySelector("select").value = "normal";
    altOf(last).value = "";
    items.splice(index, 1);
    showError(""); // a message about the photo list is stale once it changes
    active = Math.max(0, Math.min(active > index ? active - 1 : active, items.length - 1));
    syncInput();
    render();
  }

  function select(index) {
    active = index;
    render();
  }

  function buildStrip() {
    for (const look of filters) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "filter-choice";
      button.dataset.filter = look.name;
      const frame = document.createElement("span");
      frame.className = "filter-frame";
      const img = document.createElement("img");
      img.alt = "";
      img.className = "filter-thumb";
      frame.appendChild(img);
      applyLook(frame, img, look.name);
      const label = document.createElement("span");
      label.className = "filter-name";
      label.textContent = look.label;
      button.append(frame, label);
      button.addEventListener("click", () => {
        slots[active].querySelector("select").value = look.name;
        render();
      });
      strip.appendChild(button);
    }
  }

  function thumbFor(item, index) {
    const li = document.createElement("li");
    li.className = "thumb" + (index === active ? " active" : "");
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "thumb-pick";
    pick.setAttribute("aria-label", `Photo ${index + 1}: ${item.file.name}`);
    pick.setAttribute("aria-pressed", String(index === active));
    const frame = document.createElement("span");
    frame.className = "thumb-frame";
    const img = document.createElement("img");
    img.alt = "";
    img.src = item.url;
    img.addEventListener("error", () => frame.classList.add("no-preview"), { once: true });
    frame.appendChild(img);
    applyLook(frame, img, filterOf(index));
    pick.appendChild(frame);
    pick.addEventListener("click", () => select(index));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "thumb-remove";
    remove.setAttribute("aria-label", `Remove photo ${index + 1}`);
    remove.textContent = "×";
    remove.addEventListener("click", () => removeAt(index));
    li.append(pick, remove);
    return li;
  }

  function addTile() {
    const li = document.createElement("li");
    li.className = "thumb add";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "thumb-add";
    button.setAttribute("aria-label", "Add more photos");
    button.textContent = "+";
    button.addEventListener("click", () => input.click());
    li.appendChild(button);
    return li;
  }

  function render() {
    const has = items.length > 0;
    stage.hidden = !has;
    dropzone.hidden = has;
    slots.forEach((slot, i) => {
      slot.classList.toggle("filled", i < items.length);
      slot.classList.toggle("active", has && i === active);
    });
    if (!has) {
      stageImg.removeAttribute("src");
      return;
    }
    const item = items[active];
    const name = filterOf(active);
    stageImg.src = item.url;
    stageImg.alt = `Preview of photo ${active + 1}`;
    stageImg.onerror = () => stageFrame.classList.add("no-preview");
    stageImg.onload = () => {
      stageFrame.classList.remove("no-preview");
      // The frame takes the photo's shape (CSSOM, CSP-safe), within the 4:5 to 1.91:1 a post shows.
      const ratio = stageImg.naturalWidth / Math.max(stageImg.naturalHeight, 1);
      stageFrame.style.aspectRatio = String(Math.min(1.91, Math.max(0.8, ratio)));
    };
    applyLook(stagePic, stageImg, name);
    stageCount.textContent = items.length > 1 ? `${active + 1}/${items.length}` : "";
    stageCount.hidden = items.length < 2;

    thumbs.replaceChildren(...items.map(thumbFor));
    if (items.length < maxPhotos) thumbs.appendChild(addTile());

    for (const button of strip.querySelectorAll(".filter-choice")) {
      const img = button.querySelector("img");
      if (img.getAttribute("src") !== item.url) img.src = item.url;
      button.setAttribute("aria-pressed", String(button.dataset.filter === name));
    }
  }

  // ---- Choosing and dropping photos
  $("choose-photos").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    const chosen = [...input.files];
    if (chosen.length) addFiles(chosen);
    else syncInput();
  });
  // Paint the empty state straight away; the strip needs a photo before it shows anything.
  buildStrip();
  if (input.files && input.files.length) addFiles([...input.files]);
  else render();

  const over = (on) => (event) => {
    if (![...(event.dataTransfer?.types || [])].includes("Files")) return;
    event.preventDefault();
    picker.classList.toggle("dragging", on);
  };
  picker.addEventListener("dragenter", over(true));
  picker.addEventListener("dragover", over(true));
  picker.addEventListener("dragleave", (event) => {
    if (!picker.contains(event.relatedTarget)) picker.classList.remove("dragging");
  });
  picker.addEventListener("drop", (event) => {
    event.preventDefault();
    picker.classList.remove("dragging");
    if (event.dataTransfer?.files?.length) addFiles([...event.dataTransfer.files]);
  });

  // ---- Caption counter
  const captionLength = () => [...caption.value.replace(/\r\n/g, "\n")].length;
  function count() {
    const n = captionLength();
    captionNote.textContent = `${n.toLocaleString("en")} / ${maxCaption.toLocaleString("en")}`;
    captionNote.classList.toggle("error", n > maxCaption);
    caption.closest(".field").classList.toggle("invalid", n > maxCaption);
  }
  if (!captionNote.classList.contains("error")) count();
  caption.addEventListener("input", count);

  // ---- Place: the browser's location, asked for only when the button is pressed
  const locate = $("use-location");
  const placeNote = $("place-note");
  locate.addEventListener("click", () => {
    if (!("geolocation" in navigator)) {
      placeNote.textContent = "This browser can't share a location; type the coordinates instead.";
      return;
    }
    locate.disabled = true;
    placeNote.textContent = "Finding your location…";
    navigator.geolocation.getCurrentPosition(
      (position) => {
        $("f-place-lat").value = position.coords.latitude.toFixed(5);
        $("f-place-lon").value = position.coords.longitude.toFixed(5);
        placeNote.textContent = "Location added. Give the place a name if you like.";
        locate.disabled = false;
      },
      (failure) => {
        placeNote.textContent = failure.code === failure.PERMISSION_DENIED
          ? "Location permission was refused; type the coordinates instead."
          : "Couldn't find your location; type the coordinates instead.";
        locate.disabled = false;
      },
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 },
    );
  });

  // ---- Sharing: the same multipart POST, sent by XMLHttpRequest for its upload progress
  function setBusy(on, text) {
    busy = on;
    share.disabled = on;
    share.textContent = on ? "Sharing…" : "Share";
    progress.hidden = !on;
    if (text !== undefined) progressText.textContent = text;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    if (!items.length) return showError("Choose at least one photo to share.");
    if (captionLength() > maxCaption) {
      return showError(`The caption is ${captionLength().toLocaleString("en")} characters; the limit is ${maxCaption.toLocaleString("en")}.`);
    }
    const total = items.reduce((sum, item) => sum + item.file.size, 0);
    if (total > maxBodyBytes) return showError(`These photos add up to more than ${form.dataset.maxBodyMb} MB; share fewer at once.`);
    showError("");

    const data = new FormData(form);
    data.delete("photos");
    items.forEach((item) => data.append("photos", item.file, item.file.name));

    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      progressBar.value = percent;
      progressBar.textContent = `${percent}%`;
      progressText.textContent = `Uploading… ${percent}%`;
    });
    xhr.upload.addEventListener("load", () => {
      progressBar.value = 100;
      progressText.textContent = "Uploaded. Checking your photos…";
    });
    xhr.addEventListener("load", () => {
      let answer = {};
      try { answer = JSON.parse(xhr.responseText); } catch (_) { /* not JSON: a proxy's page */ }
      if (xhr.status < 300 && answer.location) {
        progressText.textContent = "Done! Opening your post…";
        window.location.assign(answer.location);
        return;
      }
      setBusy(false);
      showError(answer.error || (xhr.status === 413
        ? "That upload is too large for this server."
        : `The upload didn't go through (error ${xhr.status}). Try again.`));
    });
    const failed = () => {
      setBusy(false);
      showError("The upload was interrupted. Check your connection and try again; if it keeps failing, try fewer or smaller photos.");
    };
    xhr.addEventListener("error", failed);
    xhr.addEventListener("abort", failed);
    progressBar.value = 0;
    setBusy(true, "Uploading… 0%");
    xhr.send(data);
  });
})();
