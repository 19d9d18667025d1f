// Places: "Use my location" fills the form from the browser's position and searches. Without JavaScript (or
// without geolocation) the button stays hidden and the form works as typed.
(() => {
  const button = document.getElementById("use-location");
  const status = document.getElementById("location-status");
  if (!button || !("geolocation" in navigator)) return;
  const form = button.form;
  button.hidden = false;
  button.addEventListener("click", () => {
    button.disabled = true;
    status.textContent = "Finding where you are…";
    navigator.geolocation.getCurrentPosition(
      (position) => {
        form.elements.lat.value = position.coords.latitude.toFixed(4);
        form.elements.lon.value = position.coords.longitude.toFixed(4);
        if (!form.elements.km.value) form.elements.km.value = "5";
        status.textContent = "Searching near you…";
        form.requestSubmit();
      },
      () => {
        button.disabled = false;
        status.textContent = "Your location isn't available. Type a latitude and longitude instead.";
      },
      { timeout: 10000, maximumAge: 300000 },
    );
  });
})();
