/*
 * sandfill-walltime: a JupyterLab 4 plugin, written as a federated-module container by hand
 * (it imports nothing, so it needs no build). It asks the server extension
 * GET <base>/sandfill/walltime every 30 s and, once the job's end is near, shows a
 * JupyterLab notification (command apputils:notify) with a "Save all" action.
 */
(function () {
  "use strict";
  var POLL_MS = 30000;
  var plugin = {
    id: "sandfill-walltime:plugin",
    description: "Warns before the notebook server's Slurm walltime ends.",
    autoStart: true,
    activate: function (app) {
      var settings = app.serviceManager.serverSettings;
      var url = settings.baseUrl.replace(/\/?$/, "/") + "sandfill/walltime";
      var warned = false;
      function check() {
        var headers = {};
        if (settings.token) { headers.Authorization = "token " + settings.token; }
        fetch(url, { credentials: "same-origin", headers: headers })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (info) {
            if (!info) { return; }
            window.sandfillWalltime = info;
            if (info.warning && !warned) {
              warned = true;
              app.commands.execute("apputils:notify", {
                message: info.message,
                type: "warning",
                options: {
                  autoClose: false,
                  actions: [{ label: "Save all", commandId: "docmanager:save-all", caption: "Save all open documents" }]
                }
              });
            }
          })
          .catch(function () { /* the server is going away or restarting: try again */ });
      }
      app.restored.then(check);
      setInterval(check, POLL_MS);
    }
  };
  var container = {
    init: function () { return Promise.resolve(); },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error("sandfill-walltime has no module " + module));
      }
      return Promise.resolve(function () { return { __esModule: true, default: [plugin] }; });
    }
  };
  var registry = (window._JUPYTERLAB = window._JUPYTERLAB || {});
  registry["sandfill-walltime"] = container;
})();
