;;; e2e.el --- headless end-to-end driver for spark-ls in Emacs + eglot  -*- lexical-binding: t; -*-
;;
;;   SPARK_E2E_CONFIG=plan.json emacs --batch -q -L editors/emacs -l editors/emacs/test/e2e.el
;; (-q, not -Q: Debian's site-start puts elpa-eglot on the load-path on Emacs 28)
;;
;; plan.json: { "result": path, "command": [...], "init_options": {...},
;;              "file": path, "line": N (1-based), "column": N (0-based),
;;              "title": "Fix bug in add",                 ; picked in eglot's code-action menu
;;              "edit_line": N, "instruction": "..." }      ; then M-x spark-ls-edit there
;; Used by tests/test_editor_configs.py.  Exits 0 when everything worked.

(require 'json)
(require 'cl-lib)

(defvar spark-e2e-result (make-hash-table :test 'equal))
(defvar spark-e2e-plan nil)

(defun spark-e2e--get (key) (cdr (assq key spark-e2e-plan)))
(defun spark-e2e--put (key value) (puthash key value spark-e2e-result))

(defun spark-e2e--dump-buffers ()
  (let ((out (make-hash-table :test 'equal)))
    (dolist (buf (buffer-list))
      (when (string-match-p "EGLOT\\|\\*Messages\\*\\|events" (buffer-name buf))
        (with-current-buffer buf
          (puthash (buffer-name buf)
                   (let ((s (buffer-substring-no-properties (point-min) (point-max))))
                     (if (> (length s) 20000) (substring s (- (length s) 20000)) s))
                   out))))
    out))

(defun spark-e2e--write ()
  (unless (gethash "buffers" spark-e2e-result)
    (spark-e2e--put "buffers" (spark-e2e--dump-buffers)))
  (spark-e2e--put "emacs_version" emacs-version)
  (with-temp-file (spark-e2e--get 'result)
    (insert (json-encode spark-e2e-result))))

(defun spark-e2e--goto (line column)
  (goto-char (point-min))
  (forward-line (1- line))
  (move-to-column column))

(defun spark-e2e--run ()
  (setq spark-e2e-plan (json-read-file (getenv "SPARK_E2E_CONFIG")))
  (require 'spark-ls)
  (setq spark-ls-command (append (spark-e2e--get 'command) nil))
  ;; json-read gives an alist; eglot wants a plist (or a hash table) for JSON objects.
  (setq spark-ls-initialization-options
        (cl-loop for (k . v) in (spark-e2e--get 'init_options)
                 append (list (intern (format ":%s" k)) (if (eq v :json-false) :json-false v))))
  (spark-ls-register)
  (find-file (spark-e2e--get 'file))
  (spark-e2e--put "major_mode" (symbol-name major-mode))
  ;; What `eglot' / `eglot-ensure' do: guess the contact from `eglot-server-programs'.
  (let ((contact (eglot--guess-contact)))
    (spark-e2e--put "contact" (format "%S" (nth 3 contact)))
    (setq eglot-connect-timeout 120)
    (apply #'eglot--connect contact))
  ;; eglot connects synchronously for `eglot-sync-connect' seconds, then in the background:
  ;; wait like a user would until the buffer is managed.
  (let ((deadline (+ (float-time) 90)))
    (while (and (not (eglot-current-server)) (< (float-time) deadline))
      (accept-process-output nil 0.1)))
  (let ((server (eglot-current-server)))
    (unless server (error "eglot did not connect"))
    (spark-e2e--put "server_name" (plist-get (eglot--server-info server) :name))
    (spark-e2e--put "code_action_provider"
                    (if (eglot--server-capable :codeActionProvider) t :json-false))
    ;; 1. The code-action menu: `eglot-code-actions' as `M-x' runs it, answering the prompt.
    (spark-e2e--goto (spark-e2e--get 'line) (spark-e2e--get 'column))
    (let* ((title (spark-e2e--get 'title))
           (offered nil)
           (before (buffer-string))
           (last-nonmenu-event 13))     ; a keyboard event: eglot prompts with completing-read
      (cl-letf (((symbol-function 'completing-read)
                 (lambda (_prompt collection &rest _)
                   (setq offered (mapcar (lambda (c) (if (consp c) (car c) c)) collection))
                   title)))
        (call-interactively #'eglot-code-actions))
      (spark-e2e--put "offered" (vconcat offered))
      (when (equal before (buffer-string))
        (error "code action %S did not change the buffer" title))
      (save-buffer)
      (spark-e2e--put "after_action" (buffer-string)))
    ;; 2. M-x spark-ls-edit, answering the instruction prompt.
    (spark-e2e--goto (spark-e2e--get 'edit_line) 4)
    (let ((before (buffer-string))
          (prompts nil))
      (cl-letf (((symbol-function 'read-string)
                 (lambda (prompt &rest _)
                   (push prompt prompts)
                   (spark-e2e--get 'instruction))))
        (call-interactively #'spark-ls-edit))
      (spark-e2e--put "prompts" (vconcat prompts))
      (when (equal before (buffer-string))
        (error "spark-ls-edit did not change the buffer"))
      (save-buffer)
      (spark-e2e--put "after_edit" (buffer-string)))
    ;; Keep eglot's events/stderr buffers: shutting down kills them.
    (spark-e2e--put "buffers" (spark-e2e--dump-buffers))
    (ignore-errors (eglot-shutdown server))))

(let ((ok (condition-case err
              (progn (spark-e2e--run) t)
            (error (spark-e2e--put "error" (error-message-string err)) nil))))
  (spark-e2e--put "ok" (if ok t :json-false))
  (spark-e2e--write)
  (kill-emacs (if ok 0 1)))
