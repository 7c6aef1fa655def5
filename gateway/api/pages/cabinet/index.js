// The home page: security, sensors, cameras and gates of the chosen home.
import { startPage } from "/app/shell.js";

await startPage({ title: "Главная", active: "home" });
