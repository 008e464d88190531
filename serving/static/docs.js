// GET /docs: Swagger UI (served by this service from the flask-swagger-ui wheel) on this service's /openapi.json.
"use strict";

window.ui = SwaggerUIBundle({
  url: "openapi.json", // relative: /docs -> /openapi.json, also behind a proxy that adds a path prefix
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // no badge fetched from validator.swagger.io: no request leaves the service
});
