// The API documentation page (/api/v1/docs): Swagger UI from the portal's own files,
// reading the description this portal generates. No request leaves the portal.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    persistAuthorization: false
  });
})();
