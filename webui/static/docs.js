"use strict";
// The API reference, served from vendored Swagger UI (works offline; no inline script, so the CSP holds).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
