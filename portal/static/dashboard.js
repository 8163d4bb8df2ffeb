// The consolidated view's charts (Apache ECharts): the units below compared, month by month, and
// the map of the province's cities. The data comes from the page itself (<script type="application/json"
// id="dashboard-data">), which also shows it as tables for readers without scripts.
(function () {
  "use strict";

  // The period menu applies at once (the button stays for readers without scripts).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  var holder = document.getElementById("dashboard-data");
  if (!holder || !window.echarts) { return; }
  var data = JSON.parse(holder.textContent);
  var L = data.labels;
  // Okabe–Ito colours, told apart with any colour vision; ECharts' decals add patterns on top.
  var COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00"];
  var charts = [];
  var base = { color: COLOURS, aria: { enabled: true, decal: { show: true } }, animation: false,
               textStyle: { fontFamily: "system-ui, 'PingFang SC', 'Microsoft YaHei', 'WenQuanYi Micro Hei', sans-serif" } };

  function make(id, option) {
    var element = document.getElementById(id);
    if (!element) { return null; }
    var chart = echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(Object.assign({}, base, option));
    charts.push(chart);
    element.setAttribute("data-drawn", "1");
    return chart;
  }

  function go(url) { if (url) { window.location.href = url; } }

  // The units below compared: the rates of every child, a click opens the child's view.
  if (data.children.length) {
    var rates = data.rates.filter(function (k) { return k !== "on_time_rate"; });
    var names = data.children.map(function (c) { return c.name; });
    var children = make("chart-children", {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "value", max: 100, name: L.rate, nameLocation: "middle", nameGap: 24 },
      yAxis: { type: "category", data: names, inverse: true, axisLabel: { interval: 0 } },
      series: rates.map(function (key) {
        return { name: L[key], type: "bar", data: data.children.map(function (c) { return c[key]; }) };
      })
    });
    if (children) {
      document.getElementById("chart-children").style.height = Math.max(260, 28 * names.length + 80) + "px";
      children.resize();
      children.on("click", function (p) { go(data.children[p.dataIndex].url); });
    }
  }

  // Month by month: reports expected and received, and the reporting rate.
  if (data.monthly.length) {
    make("chart-monthly", {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.monthly.map(function (m) { return m.label; }) },
      yAxis: [{ type: "value", name: L.count }, { type: "value", name: L.rate, max: 100 }],
      series: [
        { name: L.expected, type: "bar", data: data.monthly.map(function (m) { return m.expected; }) },
        { name: L.received, type: "bar", data: data.monthly.map(function (m) { return m.received; }) },
        { name: L.reporting_rate, type: "line", yAxisIndex: 1, symbol: "diamond", symbolSize: 8,
          data: data.monthly.map(function (m) { return m.reporting_rate; }) },
        { name: L.held, type: "line", symbol: "triangle", symbolSize: 8, lineStyle: { type: "dashed" },
          data: data.monthly.map(function (m) { return m.held; }) }
      ]
    });
  }

  // Month by month, the task figures at each month's end (as of now for the current month).
  if (data.monthly.length && document.getElementById("chart-monthly-tasks")) {
    make("chart-monthly-tasks", {
      tooltip: { trigger: "axis" },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.monthly.map(function (m) { return m.label; }) },
      yAxis: [{ type: "value", name: L.rate, max: 100 }, { type: "value", name: L.count }],
      series: [
        { name: L.completion_rate, type: "line", symbol: "circle", symbolSize: 8,
          data: data.monthly.map(function (m) { return m.completion_rate; }) },
        { name: L.progress, type: "line", symbol: "diamond", symbolSize: 8, lineStyle: { type: "dashed" },
          data: data.monthly.map(function (m) { return m.progress; }) },
        { name: L.overdue, type: "bar", yAxisIndex: 1,
          data: data.monthly.map(function (m) { return m.overdue; }) },
        { name: L.activities, type: "bar", yAxisIndex: 1,
          data: data.monthly.map(function (m) { return m.activities; }) }
      ]
    });
  }

  // The activities of the units below: activities held and person-times; a click opens the child.
  if (data.children.length && document.getElementById("chart-activities")) {
    var actNames = data.children.map(function (c) { return c.name; });
    var acts = make("chart-activities", {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
      xAxis: [{ type: "value", name: L.activities, position: "top" }, { type: "value", name: L.person_times }],
      yAxis: { type: "category", data: actNames, inverse: true, axisLabel: { interval: 0 } },
      series: [
        { name: L.activities, type: "bar", xAxisIndex: 0, data: data.children.map(function (c) { return c.activities; }) },
        { name: L.person_times, type: "bar", xAxisIndex: 1, data: data.children.map(function (c) { return c.person_times; }) }
      ]
    });
    if (acts) {
      document.getElementById("chart-activities").style.height = Math.max(260, 36 * actNames.length + 80) + "px";
      acts.resize();
      acts.on("click", function (p) { go(data.children[p.dataIndex].url); });
    }
  }

  // The map: the province's cities coloured by the chosen indicator; a click opens the city.
  // echarts 4.9.0's boundary files name a city 410100 for our 4101; 济源 (our 4190) is 419001.
  function shapeId(code) { return code === "4190" ? "419001" : code + "00"; }

  if (data.map && document.getElementById("chart-map")) {
    fetch(data.map, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (geo) {
      var byShape = {};
      geo.features.forEach(function (f) { byShape[String(f.id || f.properties.id)] = f.properties.name; });
      echarts.registerMap("units-below", geo);
      var byName = {};
      var select = document.getElementById("map-indicator");
      var mapChart = null;

      function draw() {
        var key = select ? select.value : "completion_rate";
        var items = data.children.map(function (c) {
          var name = byShape[shapeId(c.code)] || c.name;
          byName[name] = c;
          return { name: name, value: c[key] === null ? NaN : c[key] };
        });
        var option = {
          tooltip: { trigger: "item", formatter: function (p) {
            var c = byName[p.name];
            var v = c && c[key] !== null ? c[key].toFixed(1) + "%" : L.no_data;
            return (c ? c.name : p.name) + "<br>" + L[key] + ": " + v;
          } },
          visualMap: { min: 0, max: 100, left: 0, bottom: 0, calculable: true, text: ["100%", "0%"],
                       inRange: { color: ["#fde725", "#5ec962", "#21918c", "#3b528b", "#440154"] } },
          series: [{ type: "map", map: "units-below", roam: false, selectedMode: false,
                     label: { show: true, fontSize: 10 }, emphasis: { label: { show: true } },
                     itemStyle: { borderColor: "#fff" }, data: items }]
        };
        if (!mapChart) {
          mapChart = make("chart-map", option);
          mapChart.on("click", function (p) { var c = byName[p.name]; if (c) { go(c.url); } });
        } else {
          mapChart.setOption(option);
        }
      }
      if (select) { select.addEventListener("change", draw); }
      draw();
    }).catch(function () {
      var section = document.getElementById("map-section");
      if (section) { section.hidden = true; }
    });
  }

  // The departments that lag: tasks (lead or co-operating) and the overdue share, a click opens the department view.
  if (data.departments.length) {
    var depts = make("chart-departments", {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.departments.map(function (d) { return d.name; }),
               axisLabel: { interval: 0, rotate: data.departments.length > 6 ? 30 : 0 } },
      yAxis: [{ type: "value", name: L.count }, { type: "value", name: L.rate, max: 100 }],
      series: [
        { name: L.tasks, type: "bar", data: data.departments.map(function (d) { return d.total; }) },
        { name: L.overdue, type: "bar", data: data.departments.map(function (d) { return d.overdue; }) },
        { name: L.overdue_share, type: "line", yAxisIndex: 1, symbol: "diamond", symbolSize: 8,
          data: data.departments.map(function (d) { return d.overdue_share; }) }
      ]
    });
    if (depts) { depts.on("click", function (p) { go(data.departments[p.dataIndex].url); }); }
  }

  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
