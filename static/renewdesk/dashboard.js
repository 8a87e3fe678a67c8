/* The home page's charts (ECharts, shipped in static/vendor/echarts). The data comes from the
   server as JSON: counts as integers, money as integers of minor units with the currency's exponent
   and the server's formatted text for each point; here minor units are only scaled for the axis. */
(function () {
  "use strict";
  var script = document.getElementById("rd-dashboard-js");
  var locale = script ? script.getAttribute("data-locale") : "EN";
  // Axis numbers as the reader writes them (25.000 in Vietnamese): ECharts' own grouping is always "25,000".
  var group = (script && script.getAttribute("data-group")) || ",";
  var decimal = (script && script.getAttribute("data-decimal")) || ".";

  function axisNumber(value) {
    var parts = String(value).split(".");
    var whole = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, group);
    return parts.length > 1 ? whole + decimal + parts[1] : whole;
  }

  function scaled(minor, exponent) {
    return minor / Math.pow(10, exponent);  // display only: the amounts shown are the server's text
  }

  function countOption(data) {
    return {
      grid: {left: 48, right: 16, top: 24, bottom: 40},
      tooltip: {
        trigger: "axis",
        formatter: function (items) {
          var i = items[0].dataIndex;
          return data.ranges[i] + "<br>" + data.series_name + ": " + data.counts[i];
        }
      },
      xAxis: {type: "category", data: data.labels, axisLabel: {interval: 0, rotate: 0, hideOverlap: true}},
      yAxis: {type: "value", minInterval: 1, axisLabel: {formatter: axisNumber}},
      series: [{name: data.series_name, type: "bar", data: data.counts, itemStyle: {color: "#007bff"}}]
    };
  }

  function moneyOption(data) {
    var selected = {};
    data.series.forEach(function (s, i) { selected[s.currency] = i === 0; });
    return {
      grid: {left: 72, right: 16, top: 40, bottom: 40},
      legend: {
        top: 0, selectedMode: "single", selected: selected,
        formatter: function (name) {
          var s = data.series.filter(function (x) { return x.currency === name; })[0];
          return s.label + " " + s.total_text;
        }
      },
      tooltip: {
        trigger: "axis",
        formatter: function (items) {
          var lines = [data.labels[items[0].dataIndex]];
          items.forEach(function (item) {
            lines.push(item.marker + data.series[item.seriesIndex].text[item.dataIndex]);
          });
          return lines.join("<br>");
        }
      },
      xAxis: {type: "category", data: data.labels, axisLabel: {hideOverlap: true}},
      yAxis: {type: "value", axisLabel: {formatter: axisNumber}},
      series: data.series.map(function (s) {
        return {
          name: s.currency, type: "bar",
          data: s.minor.map(function (m) { return scaled(m, s.exponent); })
        };
      })
    };
  }

  var charts = [];
  document.querySelectorAll(".rd-chart").forEach(function (el) {
    var source = document.getElementById("rd-chart-data-" + el.getAttribute("data-chart"));
    var data = JSON.parse(source.textContent);
    var chart = echarts.init(el, null, {locale: locale, renderer: "canvas"});
    chart.setOption(data.kind === "money" ? moneyOption(data) : countOption(data));
    el.setAttribute("data-rendered", "1");
    charts.push(chart);
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
